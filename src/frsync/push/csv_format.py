"""The push CSV: reading it into rows, and writing fulfillment requests in the same shape.

```
fulfillmentRequestId,accountingSynced,externalAccountingId,accountingError,items
221,true,QB-221,null,12312=QB-221-A;12313=QB-221-B
222,false,,Customer not found in QuickBooks,
```

An empty cell leaves the field unchanged (it is not sent); the word `null` clears it.
`accountingSynced` is `true`, `false` or `null`, in any letter case. `items` lists
`itemId=externalItemId` pairs separated by `;`: `itemId=null` clears an item's external id and
`itemId=` (nothing after `=`) leaves that item out; spaces around `;` and `=` do not count.
Other cells are taken exactly as written.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from typing import Any, TextIO

from frsync.client import FulfillmentRequest
from frsync.contract import REQUEST_SIBLING_NAMES, unknown_name_advice
from frsync.push.rows import LineProblem, PushRow
from frsync.push.validate import positive_id_problem, request_from_fields

__all__ = ["COLUMNS", "parse", "write_header", "write_rows"]

COLUMNS = (
    "fulfillmentRequestId",
    "accountingSynced",
    "externalAccountingId",
    "accountingError",
    "items",
)
_DIGITS = re.compile(r"[0-9]+")
_OMIT = object()  # an empty cell: the field is not sent


def parse(text: str) -> tuple[list[PushRow], list[LineProblem]]:
    """The rows of a push CSV, or the problems that keep it from being pushed."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows: list[PushRow] = []
    problems: list[LineProblem] = []
    try:
        header = next(reader, None)
        if header is None:
            return [], [(1, f"the header is missing; expected: {','.join(COLUMNS)}")]
        if header_problems := _header_problems(header):
            return [], [(reader.line_num, problem) for problem in header_problems]
        last_line = reader.line_num
        for cells in reader:
            line, last_line = last_line + 1, reader.line_num
            if any(cell.strip() for cell in cells):
                _parse_record(line, header, cells, rows, problems)
    except csv.Error as exc:
        problems.append((reader.line_num, f"is not valid CSV: {exc}"))
    return rows, problems


def _header_problems(header: list[str]) -> list[str]:
    names = [name.strip() for name in header]
    problems = [
        f"unknown column {name!r}; {unknown_name_advice(name, COLUMNS, REQUEST_SIBLING_NAMES)}"
        for name in names
        if name not in COLUMNS
    ]
    problems += [f"column {name!r} appears twice" for name in set(names) if names.count(name) > 1]
    if "fulfillmentRequestId" not in names:
        problems.append("the column 'fulfillmentRequestId' is required")
    if problems:
        problems.append(f"expected the columns: {','.join(COLUMNS)}")
    return problems


def _parse_record(
    line: int, header: list[str], cells: list[str], rows: list[PushRow], out: list[LineProblem]
) -> None:
    if len(cells) > len(header):
        out.append((line, f"has {len(cells)} cells but the header has {len(header)}"))
        return
    record = dict(zip((name.strip() for name in header), cells, strict=False))
    problems: list[tuple[str, str]] = []
    fr_id = _fulfillment_request_id(record.get("fulfillmentRequestId", ""), problems)
    fields = {
        name: value
        for name, value in (
            ("accountingSynced", _boolean(record.get("accountingSynced", ""), problems)),
            ("externalAccountingId", _string(record.get("externalAccountingId", ""))),
            ("accountingError", _string(record.get("accountingError", ""))),
            ("items", _items(record.get("items", ""), problems)),
        )
        if value is not _OMIT
    }
    request = request_from_fields(fields, problems)
    out.extend((line, f"{field}: {message}") for field, message in problems)
    if request is not None and fr_id is not None and not problems:
        rows.append(PushRow(line, fr_id, request))


def _fulfillment_request_id(cell: str, problems: list[tuple[str, str]]) -> int | None:
    text = cell.strip()
    problem = "is required" if not text else None
    if text and not _DIGITS.fullmatch(text):
        problem = f"must be a whole number, not {text!r}"
    if problem is None and (problem := positive_id_problem(int(text))) is None:
        return int(text)
    problems.append(("fulfillmentRequestId", problem))
    return None


def _boolean(cell: str, problems: list[tuple[str, str]]) -> Any:
    text = cell.strip().lower()
    values = {"": _OMIT, "true": True, "false": False, "null": None}
    if text in values:
        return values[text]
    problems.append(("accountingSynced", f"must be true, false, null or empty, not {cell!r}"))
    return _OMIT


def _string(cell: str) -> Any:
    text = cell.strip()
    return _OMIT if not text else None if text == "null" else cell


def _items(cell: str, problems: list[tuple[str, str]]) -> Any:
    text = cell.strip()
    if not text or text == "null":
        return _OMIT if not text else None
    items: list[dict[str, Any]] = []
    for pair in filter(str.strip, text.split(";")):
        item_id, equals, value = pair.partition("=")
        if not equals or not _DIGITS.fullmatch(item_id.strip()):
            problems.append(("items", f"{pair.strip()!r} is not itemId=externalItemId"))
        elif (external_id := _string(value.strip())) is not _OMIT:
            items.append({"id": int(item_id), "externalAccountingItemId": external_id})
    return items if items else _OMIT


# -- writing (`frsync pending --format csv`) ---------------------------------------------------


def write_header(out: TextIO) -> None:
    csv.writer(out, lineterminator="\n").writerow(COLUMNS)


def write_rows(out: TextIO, requests: Iterable[FulfillmentRequest]) -> None:
    """One row per request holding its current values: pushed back unchanged, it changes nothing.

    A value this format cannot carry back exactly (empty, blank, the word `null`; an item
    external id with a `;` or outer spaces) is written empty, which leaves it unchanged.
    """
    writer = csv.writer(out, lineterminator="\n")
    for fr in requests:
        synced = {True: "true", False: "false", None: ""}[fr.accounting_synced]
        items = ";".join(
            f"{item.id}={_item_cell(item.external_accounting_item_id)}"
            for item in fr.fulfillment_request_items
        )
        writer.writerow(
            [fr.id, synced, _cell(fr.external_accounting_id), _cell(fr.accounting_error), items]
        )


def _cell(value: str | None) -> str:
    return "" if value is None or value.strip() in ("", "null") else value


def _item_cell(value: str | None) -> str:
    text = _cell(value)
    return "" if ";" in text or text != text.strip() else text
