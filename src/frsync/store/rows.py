"""Column lists and row → resource conversion shared by every SQL backend."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import msgspec

from frsync.domain import AccountingState
from frsync.models import (
    FulfillmentRequest,
    HistoryEntry,
    Item,
    Status,
    format_ms,
    format_ms_or_none,
)

FR_COLUMNS = (
    "id",
    "fulfillment_request_number",
    "account_id",
    "source_id",
    "order_id",
    "channel_id",
    "status",
    "generated_at",
    "sent_at",
    "acknowledged_at",
    "updated_at",
    "accounting_synced",
    "external_accounting_id",
    "accounting_error",
    "accounting_synced_at",
)
# FR_COLUMNS split by table (store/schema.py): the wide table's, and the accounting state,
# whose table also holds copies of the scope columns and status for its partial indexes.
WIDE_COLUMNS = FR_COLUMNS[:10]
ACCOUNTING_COLUMNS = FR_COLUMNS[10:]
COPIED_COLUMNS = ("account_id", "source_id", "channel_id", "status")
ACCOUNTING_ROW_COLUMNS = ("id", *COPIED_COLUMNS, *ACCOUNTING_COLUMNS)
_COPIED_AT = tuple(FR_COLUMNS.index(c) for c in ("id", *COPIED_COLUMNS))
# The two tables as one FR (f: the wide table, a: its accounting), and FR_COLUMNS from them.
FR_JOIN = "fulfillment_requests AS f JOIN fulfillment_request_accounting AS a ON a.id = f.id"
FR_SELECT = tuple(f"f.{c}" if c in WIDE_COLUMNS else f"a.{c}" for c in FR_COLUMNS)
ITEM_COLUMNS = (
    "id",
    "fulfillment_request_id",
    "sku",
    "title",
    "quantity",
    "cost",
    "order_item_id",
    "external_accounting_item_id",
)
# The columns `load` upserts, in the order of `LoadData` tuples.
ACCOUNT_COLUMNS = ("id", "name")
SOURCE_COLUMNS = ("id", "account_id", "name")
CHANNEL_COLUMNS = ("id", "account_id", "name")
TOKEN_COLUMNS = ("token_hash", "token_type", "scope_id", "label", "created_at")
HISTORY_COLUMNS = ("at", "token_id", "token_type", "request_id", "changes")
# What a history read selects: the entry's id, then the columns written.
HISTORY_READ_COLUMNS = ("id", *HISTORY_COLUMNS)


def split_fr_rows(
    rows: Sequence[Sequence[Any]],
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Rows of FR_COLUMNS as rows of WIDE_COLUMNS and rows of ACCOUNTING_ROW_COLUMNS."""
    width = len(WIDE_COLUMNS)
    wide = [tuple(row[:width]) for row in rows]
    accounting = [(*(row[k] for k in _COPIED_AT), *row[width:]) for row in rows]
    return wide, accounting


_STATUSES: dict[str, Status] = {}


def _status(name: str) -> Status:
    # Statuses are few: share one frozen Status per name instead of one per row.
    status = _STATUSES.get(name)
    if status is None:
        status = _STATUSES[name] = Status(name)
    return status


def accounting_state(
    row: Sequence[Any], item_external_ids: dict[int, str | None]
) -> AccountingState:
    """The first seven columns of a state query (see each backend's STATE_SQL) and the items."""
    synced = row[3]
    return AccountingState(
        account_id=row[0],
        source_id=row[1],
        channel_id=row[2],
        accounting_synced=None if synced is None else bool(synced),  # SQLite stores 0/1
        external_accounting_id=row[4],
        accounting_error=row[5],
        accounting_synced_at=row[6],
        item_external_ids=item_external_ids,
    )


def item_from_row(row: Sequence[Any]) -> Item:
    return Item(row[0], row[2], row[3], row[4], row[5], row[6], row[7])


def fr_from_row(row: Sequence[Any], items: Iterable[Sequence[Any]]) -> FulfillmentRequest:
    synced = row[11]
    return FulfillmentRequest(
        id=row[0],
        fulfillment_request_number=row[1],
        account_id=row[2],
        source_id=row[3],
        order_id=row[4],
        channel_id=row[5],
        fulfillment_request_status=_status(row[6]),
        generated_at=format_ms(row[7]),
        sent_at=format_ms_or_none(row[8]),
        acknowledged_at=format_ms_or_none(row[9]),
        updated_at=format_ms(row[10]),
        accounting_synced=None if synced is None else bool(synced),
        external_accounting_id=row[12],
        accounting_error=row[13],
        accounting_synced_at=format_ms_or_none(row[14]),
        fulfillment_request_items=[item_from_row(item) for item in items],
    )


_changes_decoder = msgspec.json.Decoder(dict[str, object])


def history_from_row(row: Sequence[Any]) -> HistoryEntry:
    """A row of HISTORY_READ_COLUMNS."""
    entry_id, at, token_id, token_type, request_id, changes = row
    return HistoryEntry(
        entry_id, format_ms(at), token_id, token_type, request_id, _changes_decoder.decode(changes)
    )


def group_items(
    fr_rows: Sequence[Sequence[Any]], item_rows: Iterable[Sequence[Any]]
) -> list[FulfillmentRequest]:
    """Attach items (any order) to their FRs, keeping the FRs' order."""
    by_fr: dict[int, list[Sequence[Any]]] = {row[0]: [] for row in fr_rows}
    for item in item_rows:
        by_fr[item[1]].append(item)
    return [fr_from_row(row, sorted(by_fr[row[0]], key=lambda i: i[0])) for row in fr_rows]
