"""The SQL of sandbox mode, shared by both backends: written with `?`, which the PostgreSQL
store numbers (`sandbox_postgres.pg`). Column and table names only are formatted in; every
value is bound."""

from __future__ import annotations

from typing import Any

from frsync.models import SCOPED_TOKEN_TYPES
from frsync.store.sandbox_base import BASELINE_MARK, JournalFilter, TenantIds, TenantPlan

JOURNAL_COLUMNS = (
    "at",
    "method",
    "path",
    "query",
    "status",
    "duration_ms",
    "request_id",
    "token_id",
    "token_type",
    "body",
    "body_truncated",
)
JOURNAL_INSERT = (
    f"INSERT INTO sandbox_journal ({', '.join(JOURNAL_COLUMNS)})"
    f" VALUES ({', '.join('?' * len(JOURNAL_COLUMNS))}) RETURNING id"
)
JOURNAL_TRIM = "DELETE FROM sandbox_journal WHERE id <= ?"

_BASELINE_FR_COLUMNS = (
    "accounting_synced, external_accounting_id, accounting_error, accounting_synced_at, updated_at"
)
# Taken inside every load's transaction: the baseline is the state the load leaves.
TAKE_BASELINE = (
    "DELETE FROM sandbox_baseline_frs",
    f"INSERT INTO sandbox_baseline_frs (id, {_BASELINE_FR_COLUMNS})"
    f" SELECT id, {_BASELINE_FR_COLUMNS} FROM fulfillment_requests",
    "DELETE FROM sandbox_baseline_items",
    "INSERT INTO sandbox_baseline_items (id, fulfillment_request_id, external_accounting_item_id)"
    " SELECT id, fulfillment_request_id, external_accounting_item_id"
    " FROM fulfillment_request_items",
    "INSERT INTO sandbox_state (name, value)"
    f" SELECT '{BASELINE_MARK}', COALESCE(MAX(id), 0) FROM accounting_history WHERE true"
    " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
)
BASELINE_MARK_SQL = f"SELECT value FROM sandbox_state WHERE name = '{BASELINE_MARK}'"
# The FRs with history since the baseline: only they can differ from it.
TOUCHED = "SELECT DISTINCT fulfillment_request_id FROM accounting_history WHERE id > ?"
_FR_FIELDS = (
    "accounting_synced",
    "external_accounting_id",
    "accounting_error",
    "accounting_synced_at",
    "updated_at",
)


def restore(differs: str, touched: str) -> tuple[str, str]:
    """Two statements putting back the FRs and items of the FRs `touched` names, writing
    only rows that differ. `differs` is the backend's null-safe "not equal" (`IS NOT` on
    SQLite, `IS DISTINCT FROM` on PostgreSQL); `touched` is `IN (TOUCHED)` (taking the
    baseline mark) or `= ANY(?)` (taking the FR ids)."""
    fr_changed = " OR ".join(f"fulfillment_requests.{c} {differs} b.{c}" for c in _FR_FIELDS)
    item = "fulfillment_request_items.external_accounting_item_id"
    return (
        "UPDATE fulfillment_requests SET "
        + ", ".join(f"{c} = b.{c}" for c in _FR_FIELDS)
        + " FROM sandbox_baseline_frs b WHERE b.id = fulfillment_requests.id"
        f" AND fulfillment_requests.id {touched} AND ({fr_changed})",
        f"UPDATE fulfillment_request_items SET external_accounting_item_id ="
        " b.external_accounting_item_id FROM sandbox_baseline_items b"
        " WHERE b.id = fulfillment_request_items.id"
        f" AND fulfillment_request_items.fulfillment_request_id {touched}"
        f" AND {item} {differs} b.external_accounting_item_id",
    )


FORGET_HISTORY = "DELETE FROM accounting_history WHERE id > ?"


CLEAR_RULES = "DELETE FROM sandbox_faults"
CLEAR_JOURNAL = "DELETE FROM sandbox_journal"

LIVE_TENANTS = "SELECT account_id FROM sandbox_tenants WHERE removed_at IS NULL"
_FRS = "SELECT id FROM fulfillment_requests WHERE account_id = ?"
# Removing one tenant: each statement with the number of times it takes the account id; a
# statement that starts with UPDATE takes the time first.
REMOVE_TENANT = (
    (
        "UPDATE api_tokens SET revoked_at = ? WHERE revoked_at IS NULL AND ("
        "(token_type = 'account' AND scope_id = ?) OR (token_type = 'source' AND"
        " scope_id IN (SELECT id FROM sources WHERE account_id = ?)) OR"
        " (token_type = 'channel' AND scope_id IN (SELECT id FROM channels WHERE account_id = ?)))",
        3,
    ),
    (f"DELETE FROM accounting_history WHERE fulfillment_request_id IN ({_FRS})", 1),
    (f"DELETE FROM fulfillment_request_items WHERE fulfillment_request_id IN ({_FRS})", 1),
    ("DELETE FROM fulfillment_requests WHERE account_id = ?", 1),
    ("DELETE FROM channels WHERE account_id = ?", 1),
    ("DELETE FROM sources WHERE account_id = ?", 1),
    ("DELETE FROM accounts WHERE id = ?", 1),
    ("UPDATE sandbox_tenants SET removed_at = ? WHERE account_id = ?", 1),
)


def removal(account_id: int, now: int) -> list[tuple[str, tuple[int, ...]]]:
    """The statements removing one tenant, with their parameters."""
    return [
        (sql, ((now,) if sql.startswith("UPDATE") else ()) + (account_id,) * count)
        for sql, count in REMOVE_TENANT
    ]


RESERVE_IDS = (
    "INSERT INTO sandbox_state (name, value) VALUES (?, ?)"
    " ON CONFLICT (name) DO UPDATE SET value = sandbox_state.value + ? RETURNING value"
)
TENANT_SQL = {
    "account": "INSERT INTO accounts (id, name) VALUES (?, ?)",
    "source": "INSERT INTO sources (id, account_id, name) VALUES (?, ?, ?)",
    "channel": "INSERT INTO channels (id, account_id, name) VALUES (?, ?, ?)",
    "tenant": "INSERT INTO sandbox_tenants (account_id, created_at) VALUES (?, ?)",
    "fr": "INSERT INTO fulfillment_requests (id, fulfillment_request_number, account_id,"
    " source_id, order_id, channel_id, status, generated_at, sent_at, updated_at)"
    " VALUES (?, ?, ?, ?, ?, ?, 'Processed', ?, ?, ?)",
    "item": "INSERT INTO fulfillment_request_items (id, fulfillment_request_id, sku, title,"
    " quantity, cost, order_item_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
    "token": "INSERT INTO api_tokens (token_hash, token_type, scope_id, label, created_at)"
    " VALUES (?, ?, ?, ?, ?)",
}


def tenant_rows(plan: TenantPlan, first: int) -> tuple[TenantIds, dict[str, list[tuple[Any, ...]]]]:
    """The rows of a tenant whose ids start at `first`, per TENANT_SQL statement."""
    account, source, channel = first, first + 1, first + 2
    fr_ids = list(range(first + 3, first + 3 + plan.fulfillment_requests))
    next_item = fr_ids[-1] + 1
    now, per = plan.now, plan.items_per_request
    items = []
    for k, fr_id in enumerate(fr_ids):
        for n in range(per):
            item_id = next_item + k * per + n
            items.append(
                (
                    item_id,
                    fr_id,
                    f"SKU-{n + 1}",
                    f"Tenant item {n + 1}",
                    1 + n % 3,
                    10.0 + n,
                    item_id,
                )
            )
    label = f"sandbox tenant {account}"
    rows: dict[str, list[tuple[Any, ...]]] = {
        "account": [(account, f"Sandbox tenant {account}")],
        "source": [(source, account, f"Tenant {account} source")],
        "channel": [(channel, account, f"Tenant {account} channel")],
        "tenant": [(account, now)],
        "fr": [
            (fr_id, f"FR-{fr_id}", account, source, fr_id, channel, now, now, now)
            for fr_id in fr_ids
        ],
        "item": items,
        "token": [
            (plan.token_hashes[kind], kind, scope, label, now)
            for kind, scope in zip(SCOPED_TOKEN_TYPES, (account, source, channel), strict=True)
        ],
    }
    return TenantIds(account, source, channel, fr_ids), rows


def journal_query(where: JournalFilter) -> tuple[str, list[Any]]:
    terms: list[str] = []
    params: list[Any] = []
    if where.method is not None:
        terms.append("method = ?")
        params.append(where.method)
    if where.path is not None:
        if where.path.endswith("*"):
            prefix = where.path[:-1]
            terms.append("substr(path, 1, ?) = ?")
            params += [len(prefix), prefix]
        else:
            terms.append("path = ?")
            params.append(where.path)
    if where.status is not None:
        terms.append("status = ?")
        params.append(where.status)
    if where.token_id is not None:
        terms.append("token_id = ?")
        params.append(where.token_id)
    sql = f"SELECT id, {', '.join(JOURNAL_COLUMNS)} FROM sandbox_journal"
    if terms:
        sql += " WHERE " + " AND ".join(terms)
    return sql + " ORDER BY id DESC LIMIT ?", [*params, where.limit]


ACCOUNT_OF = {
    "account": "SELECT id FROM accounts WHERE id = ?",
    "source": "SELECT account_id FROM sources WHERE id = ?",
    "channel": "SELECT account_id FROM channels WHERE id = ?",
}
RULES_SQL = (
    "SELECT id, rule, remaining FROM sandbox_faults"
    " WHERE remaining IS NULL OR remaining > 0 ORDER BY id"
)
FIRE_SQL = "UPDATE sandbox_faults SET remaining = remaining - 1 WHERE id = ? AND remaining > 0"
ADD_RULE = "INSERT INTO sandbox_faults (rule, remaining, created_at) VALUES (?, ?, ?) RETURNING id"
DELETE_RULE = "DELETE FROM sandbox_faults WHERE id = ?"
TENANT_STATE = "SELECT removed_at FROM sandbox_tenants WHERE account_id = ?"
