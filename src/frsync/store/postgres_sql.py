"""The PostgreSQL store's statements, and the rows they return: fewer round trips than
SQLite's, the same results.

Reads that SQLite answers in two statements (an FR, then its items) are one here: the FR
columns joined to its items' columns, so a page comes back in one round trip and from one
snapshot. Column and table names come from constants, never from the caller; values are
bound.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from msgspec import UNSET, UnsetType

from frsync.domain import SCOPE_COLUMNS, AccountingPlan, AccountingState, Principal
from frsync.models import FulfillmentRequest, ScopedTokenType, TokenType
from frsync.store import queries
from frsync.store.base import Audit, FrQuery
from frsync.store.placeholders import dollar
from frsync.store.rows import (
    FR_COLUMNS,
    FR_JOIN,
    FR_SELECT,
    HISTORY_READ_COLUMNS,
    ITEM_COLUMNS,
    WIDE_COLUMNS,
    accounting_state,
    group_items,
)

FR_WIDTH = len(FR_COLUMNS)  # where the item columns start in a joined row
# The types of the columns sent as arrays: the FRs' (a load's, a sandbox tenant's).
_ARRAY_TYPES = {c: "text" if c in ("fulfillment_request_number", "status") else "bigint"
                for c in WIDE_COLUMNS}  # fmt: skip


def arrays(columns: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> tuple[str, tuple[Any, ...]]:
    """Many rows as one statement's parameters: an array per column, unnested back to rows."""
    unnest = ", ".join(f"{dollar(n)}::{_ARRAY_TYPES[c]}[]" for n, c in enumerate(columns, 1))
    return f"SELECT * FROM unnest({unnest})", tuple(list(c) for c in zip(*rows, strict=True))


def _cols(alias: str, columns: tuple[str, ...]) -> str:
    return ", ".join(f"{alias}.{c}" for c in columns)


# The tokens of a batch of lookups, `[{"h": sha256 hex, "n": its place}…]`: a row [n, id,
# type, scope] per live one. LATERAL: each looked up by its unique index, whatever the
# planner guesses of the batch's size.
PRINCIPALS_SQL = (
    "SELECT q.n, t.id, t.token_type, t.scope_id"
    " FROM jsonb_to_recordset($1::jsonb) AS q(n int, h text)"
    " CROSS JOIN LATERAL (SELECT id, token_type, scope_id FROM api_tokens"
    " WHERE token_hash = decode(q.h, 'hex') AND revoked_at IS NULL) AS t"
)


def begin_sql(lock_timeout_ms: int) -> str:
    """Open a transaction whose lock waits are bounded, in one simple-protocol message."""
    return f"BEGIN; SET LOCAL lock_timeout = {lock_timeout_ms:d}"


def state_from_row(row: Sequence[Any]) -> AccountingState:
    return accounting_state(row, dict(zip(row[7] or (), row[8] or (), strict=True)))


def frs_from_joined_rows(rows: Sequence[Sequence[Any]]) -> list[FulfillmentRequest]:
    """Rows of FR columns then item columns (NULL when the FR has none), ordered by FR."""
    frs: list[Sequence[Any]] = []
    items: list[Sequence[Any]] = []
    for row in rows:
        if not frs or frs[-1][0] != row[0]:
            frs.append(row)
        if row[FR_WIDTH] is not None:
            items.append(row[FR_WIDTH:])
    return group_items(frs, items)


# The whole PATCH in one round trip: see migration 0005_sync_accounting_function. Columns:
# the FR's state (when it refused: accounting columns, item ids, their external ids), then the
# outcome.
SYNC_SQL = "SELECT * FROM frsync_sync_accounting(" + ", ".join(f"${n}" for n in range(1, 18)) + ")"
SYNC_OK, SYNC_MISSING = "ok", "missing"


def sync_args(fr_id: int, plan: AccountingPlan, audit: Audit, lock_timeout_ms: int) -> list[Any]:
    """SYNC_SQL's parameters: for each top-level field whether the body gave it, and its
    value; the items as three arrays (ids, given or not, values)."""
    patch = plan.patch
    items = patch.items or ()
    args: list[Any] = [fr_id, plan.principal.token_type, plan.principal.scope_id, lock_timeout_ms]
    for value in (patch.accounting_synced, patch.external_accounting_id, patch.accounting_error):
        args += (False, None) if value is UNSET else (True, value)
    args += [
        [item.id for item in items],
        [item.external_accounting_item_id is not UNSET for item in items],
        [_given(item.external_accounting_item_id) for item in items],
        plan.now,
        audit.at,
        audit.token_id,
        audit.request_id,
    ]
    return args


# The batch: see postgres_batch.py and migration 0007. Columns: `n` (the PATCH's place in the
# batch), then SYNC_SQL's.
BATCH_SQL = "SELECT * FROM frsync_sync_accounting_batch($1::jsonb)"
SYNC_FAILED = "failed:"  # an outcome prefix: that PATCH failed alone, to be re-run by itself
SYNC_LOCK_TIMEOUT = SYNC_FAILED + "55P03"  # lock_not_available: 503 without a second wait
_BATCH_KEYS = ("fr", "type", "scope", "lock", "setSynced", "synced", "setExt", "ext",
               "setError", "error", "itemIds", "itemSet", "itemExts", "now", "at", "token",
               "request")  # fmt: skip


def batch_patch(
    fr_id: int, plan: AccountingPlan, audit: Audit, lock_timeout_ms: int
) -> dict[str, Any]:
    """One PATCH of a batch: SYNC_SQL's parameters, by name."""
    return dict(zip(_BATCH_KEYS, sync_args(fr_id, plan, audit, lock_timeout_ms), strict=True))


def _given(value: str | UnsetType | None) -> str | None:
    return None if value is UNSET else value


def _scoped(sql: str) -> dict[str, str]:
    return {column: sql.format(scope=column) for column in SCOPE_COLUMNS.values()}


# One row per item, or one row of NULL item columns for an FR without items.
GET_SQL = _scoped(
    f"SELECT {', '.join(FR_SELECT)}, {_cols('i', ITEM_COLUMNS)}"
    f" FROM {FR_JOIN}"
    " LEFT JOIN fulfillment_request_items AS i ON i.fulfillment_request_id = f.id"
    " WHERE f.id = $1 AND f.{scope} = $2 ORDER BY i.id"
)
# A page of history ($3: newest id wanted, $4: page size). No rows: no such FR in scope. One
# row of NULLs: the FR, without entries in that range. LATERAL keeps the page one backward
# range scan of ix_history_fr_id, however long the history.
HISTORY_SQL = _scoped(
    f"SELECT {_cols('h', HISTORY_READ_COLUMNS)} FROM fulfillment_requests AS f"
    " LEFT JOIN LATERAL (SELECT * FROM accounting_history"
    " WHERE fulfillment_request_id = f.id AND id <= $3::bigint"
    " ORDER BY id DESC LIMIT $4::bigint) AS h ON true"
    " WHERE f.id = $1 AND f.{scope} = $2 ORDER BY h.id DESC"
)


def list_sql(
    principal: Principal, query: FrQuery, total: int | None = None
) -> tuple[str, list[Any]]:
    """The page of FRs (the shared filters), joined to their items, in one statement."""
    page, params = queries.list_sql(principal, query, FR_SELECT, placeholder=dollar, total=total)
    sql = (
        f"WITH page AS ({page}) SELECT page.*, {_cols('i', ITEM_COLUMNS)} FROM page"
        " LEFT JOIN fulfillment_request_items AS i ON i.fulfillment_request_id = page.id"
        " ORDER BY page.id, i.id"
    )
    return sql, params


# Inserts nothing (and returns no id) when the token's account/source/channel is missing.
_SCOPE_TABLES: dict[ScopedTokenType, str] = {
    "account": "accounts",
    "source": "sources",
    "channel": "channels",
}
_ISSUE = (
    "INSERT INTO api_tokens (token_hash, token_type, scope_id, label, created_at)"
    " SELECT $1::bytea, $2::varchar, $3::bigint, $4::text, $5::bigint"
)
ISSUE_SQL: dict[TokenType, str] = {
    token_type: f"{_ISSUE} WHERE EXISTS (SELECT 1 FROM {table} WHERE id = $3) RETURNING id"
    for token_type, table in _SCOPE_TABLES.items()
}
ISSUE_SQL["operator"] = f"{_ISSUE} RETURNING id"  # an operator token has no scope row
REVOKE_SQL = (
    "UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL RETURNING id"
)
ISSUED_SQL = (
    "SELECT id, token_type, scope_id, label, created_at, revoked_at FROM api_tokens ORDER BY id"
)
