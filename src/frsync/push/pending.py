"""`frsync pending`: the fulfillment requests still to sync, streamed page by page.

`csv` and `jsonl` write the shape `frsync push` reads, holding each request's current values:
pushed back untouched, the file changes nothing; a connector fills in what it synced.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TextIO

from rich.console import Console
from rich.table import Table

from frsync.client import Client, FulfillmentRequest, FulfillmentRequestFilters
from frsync.push import csv_format, jsonl_format

__all__ = ["FORMATS", "pending_filters", "write_pending"]

FORMATS = ("table", "csv", "jsonl")

# Fixed widths (the error takes what is left) so each page's table lines up with the last.
_TABLE_COLUMNS: tuple[tuple[str, int | None], ...] = (
    ("id", 10),
    ("number", 12),
    ("status", 12),
    ("synced", 6),
    ("items", 5),
    ("external id", 14),
    ("accounting error", None),
)
# `--errors` is read for its errors: on 80 columns they get half the line, not a ninth.
_ERRORS_ONLY_HIDES = {"synced", "items", "external id"}


def pending_filters(*, errors: bool) -> FulfillmentRequestFilters:
    """Not yet synced (false or null), or with `errors`: carrying an accounting error."""
    return {"has_accounting_error": True} if errors else {"accounting_synced": False}


def write_pending(
    client: Client, *, errors: bool, output_format: str, out: TextIO, console: Console
) -> int:
    """Write every matching request as pages arrive; return how many were written."""
    written = 0
    if output_format == "csv":
        csv_format.write_header(out)
    for page in client.iter_pages(**pending_filters(errors=errors)):
        if output_format == "csv":
            csv_format.write_rows(out, page)
        elif output_format == "jsonl":
            jsonl_format.write_rows(out, page)
        else:
            console.print(_table(page, show_header=written == 0, errors=errors))
        written += len(page)
        out.flush()
    return written


def _table(page: Sequence[FulfillmentRequest], *, show_header: bool, errors: bool) -> Table:
    table = Table(box=None, show_header=show_header, pad_edge=False, expand=True)
    shown = [
        (index, name, width)
        for index, (name, width) in enumerate(_TABLE_COLUMNS)
        if not (errors and name in _ERRORS_ONLY_HIDES)
    ]
    for _, name, width in shown:
        last = errors and width is None  # the one column read whole: wrapped, never cut
        table.add_column(
            name,
            width=width,
            ratio=None if width else 1,
            min_width=8,
            no_wrap=not last,
            overflow="fold" if last else "ellipsis",
        )
    for fr in page:
        cells = _cells(fr)
        table.add_row(*(cells[index] for index, _, _ in shown))
    return table


def _cells(fr: FulfillmentRequest) -> tuple[str, ...]:
    return (
        str(fr.id),
        fr.fulfillment_request_number or "",
        fr.status or "",
        {True: "true", False: "false", None: "null"}[fr.accounting_synced],
        str(len(fr.fulfillment_request_items)),
        fr.external_accounting_id or "",
        " ".join((fr.accounting_error or "").split()),
    )
