"""The SQL of sandbox mode, shared by both backends: written with `?`, which the PostgreSQL
store numbers (`store_postgres.pg`). Column and table names only are formatted in; every
value is bound."""

from __future__ import annotations

# ruff: noqa: S608 (SQL built from column-name constants; every value is bound, never formatted in)
from collections.abc import Iterator
from typing import Any

from frsync.models import SCOPED_TOKEN_TYPES
from frsync.sandbox.store import (
    JOURNAL_KEEP,
    MAX_RULES,
    MAX_TENANT_RULES,
    RULES_VERSION,
    TENANT_JOURNAL_KEEP,
    JournalFilter,
    RuleFilter,
    TenantIds,
    TenantPlan,
    is_tenant_id,
)
from frsync.store.queries import ManyRows

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
    "account_id",
    "body_omitted",
)
JOURNAL_INSERT = (
    f"INSERT INTO sandbox_journal ({', '.join(JOURNAL_COLUMNS)}, size)"
    f" VALUES ({', '.join('?' * (len(JOURNAL_COLUMNS) + 1))}) RETURNING id"
)
# Per account: the id of the newest entry past what the account keeps (an index seek).
JOURNAL_KEEP_FROM = {
    True: "SELECT id FROM sandbox_journal WHERE account_id IS NULL"
    " ORDER BY id DESC LIMIT 1 OFFSET ?",
    False: "SELECT id FROM sandbox_journal WHERE account_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?",
}
JOURNAL_TRIM_ACCOUNT = {
    True: "DELETE FROM sandbox_journal WHERE account_id IS NULL AND id <= ?",
    False: "DELETE FROM sandbox_journal WHERE account_id = ? AND id <= ?",
}
# An account's entries past what it keeps are found by an index scan as long as what it keeps:
# done every JOURNAL_TRIM_EVERY entries, so an account may hold that many more for a while.
JOURNAL_TRIM_EVERY = 8
# Every JOURNAL_CHECK_EVERY entries, the whole journal's rows and bytes are counted; past a
# bound, the oldest entries go until it holds nine tenths of it.
JOURNAL_CHECK_EVERY = 128
JOURNAL_TOTALS = "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM sandbox_journal"
JOURNAL_CUT = (
    "SELECT id FROM (SELECT id, SUM(size) OVER (ORDER BY id DESC) AS bytes,"
    " ROW_NUMBER() OVER (ORDER BY id DESC) AS n FROM sandbox_journal) AS ranked"
    " WHERE bytes > ? OR n > ? ORDER BY id DESC LIMIT 1"
)
JOURNAL_TRIM = "DELETE FROM sandbox_journal WHERE id <= ?"
TOKENS_KNOWN = "SELECT token_hash FROM api_tokens WHERE token_hash IN ({marks})"
REVOKED_BY_HASH = (
    "SELECT id, token_type, scope_id FROM api_tokens"
    " WHERE token_hash = ? AND revoked_at IS NOT NULL"
)


def journal_keep(account_id: int | None) -> int:
    """How many of an account's newest entries the journal keeps."""
    if is_tenant_id(account_id):
        return TENANT_JOURNAL_KEEP
    return JOURNAL_KEEP


# What a reset goes back to is what the last load left: every load records it in its own
# transaction (the backends register `take_baseline` on the store; see frsync/backends.py),
# with the last history id the load saw as the mark.
BASELINE_MARK = "baseline_history_id"
_FR_FIELDS = (
    "accounting_synced",
    "external_accounting_id",
    "accounting_error",
    "accounting_synced_at",
    "updated_at",
)
_FR_COLUMNS = ", ".join(_FR_FIELDS)
TAKE_BASELINE = (
    "DELETE FROM sandbox_baseline_frs",
    f"INSERT INTO sandbox_baseline_frs (id, {_FR_COLUMNS})"
    f" SELECT id, {_FR_COLUMNS} FROM fulfillment_request_accounting",
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


def restore(differs: str, touched: str) -> tuple[str, str]:
    """Two statements putting back the FRs and items of the FRs `touched` names, writing
    only rows that differ. `differs` is the backend's null-safe "not equal" (`IS NOT` on
    SQLite, `IS DISTINCT FROM` on PostgreSQL); `touched` is `IN (TOUCHED)` (taking the
    baseline mark) or `= ANY(?)` (taking the FR ids)."""
    fr = "fulfillment_request_accounting"
    fr_changed = " OR ".join(f"{fr}.{c} {differs} b.{c}" for c in _FR_FIELDS)
    item = "fulfillment_request_items.external_accounting_item_id"
    return (
        f"UPDATE {fr} SET "
        + ", ".join(f"{c} = b.{c}" for c in _FR_FIELDS)
        + f" FROM sandbox_baseline_frs b WHERE b.id = {fr}.id"
        f" AND {fr}.id {touched} AND ({fr_changed})",
        f"UPDATE fulfillment_request_items SET external_accounting_item_id ="
        " b.external_accounting_item_id FROM sandbox_baseline_items b"
        " WHERE b.id = fulfillment_request_items.id"
        f" AND fulfillment_request_items.fulfillment_request_id {touched}"
        f" AND {item} {differs} b.external_accounting_item_id",
    )


FORGET_HISTORY = "DELETE FROM accounting_history WHERE id > ?"


CLEAR_RULES = "DELETE FROM sandbox_faults"
CLEAR_JOURNAL = "DELETE FROM sandbox_journal"
BUMP_RULES_VERSION = (
    f"INSERT INTO sandbox_state (name, value) VALUES ('{RULES_VERSION}', 1)"
    " ON CONFLICT (name) DO UPDATE SET value = sandbox_state.value + 1"
)

# A reset removes every tenant at once by deleting their sandbox_tenants rows: from then on
# their tokens are refused (sandbox mode checks the tenant is live on every request, in the
# same read as the rules' version). Their rows — tokens, FRs, items, history, the account —
# are purged right after, a chunk of tenants per transaction, so nothing waits long for them.
REQUEST_STATE = (
    f"SELECT (SELECT value FROM sandbox_state WHERE name = '{RULES_VERSION}'),"
    " EXISTS (SELECT 1 FROM sandbox_tenants WHERE account_id = ? AND removed_at IS NULL)"
)
# Tenants' ids all come from one counter starting at TENANT_ID_BASE: an account there with no
# sandbox_tenants row is a removed tenant (an index range scan, however many were made).
PURGE_CANDIDATES = (
    "SELECT id FROM accounts WHERE id >= ?"
    " AND id NOT IN (SELECT account_id FROM sandbox_tenants) ORDER BY id LIMIT ?"
)
PURGE_CHUNK = 100
CLEAR_TENANTS = "DELETE FROM sandbox_tenants"
_FRS = "SELECT id FROM fulfillment_requests WHERE account_id = ?"
# Removing one tenant, whose source and channel ids follow its account id: each statement
# with the offsets from the account id of its parameters.
REMOVE_TENANT = (
    ("DELETE FROM api_tokens WHERE scope_id IN (?, ?, ?) AND token_type <> 'operator'", (0, 1, 2)),
    (f"DELETE FROM accounting_history WHERE fulfillment_request_id IN ({_FRS})", (0,)),
    (f"DELETE FROM fulfillment_request_items WHERE fulfillment_request_id IN ({_FRS})", (0,)),
    ("DELETE FROM fulfillment_request_accounting WHERE account_id = ?", (0,)),
    ("DELETE FROM fulfillment_requests WHERE account_id = ?", (0,)),
    ("DELETE FROM channels WHERE id = ? AND account_id = ?", (2, 0)),
    ("DELETE FROM sources WHERE id = ? AND account_id = ?", (1, 0)),
    ("DELETE FROM accounts WHERE id = ?", (0,)),
    ("DELETE FROM sandbox_faults WHERE account_id = ?", (0,)),
    ("DELETE FROM sandbox_journal WHERE account_id = ?", (0,)),
    ("DELETE FROM sandbox_tenants WHERE account_id = ?", (0,)),
)


def removal(account_id: int) -> list[tuple[str, tuple[int, ...]]]:
    """The statements removing one tenant, with their parameters."""
    return [(sql, tuple(account_id + k for k in offsets)) for sql, offsets in REMOVE_TENANT]


_TENANT_FR_COLUMNS = (
    "id", "fulfillment_request_number", "account_id", "source_id", "order_id", "channel_id",
    "status", "generated_at", "sent_at",
)  # fmt: skip
RESERVE_IDS = (
    "INSERT INTO sandbox_state (name, value) VALUES (?, ?)"
    " ON CONFLICT (name) DO UPDATE SET value = sandbox_state.value + ? RETURNING value"
)
TENANT_SQL = {
    "account": "INSERT INTO accounts (id, name) VALUES (?, ?)",
    "source": "INSERT INTO sources (id, account_id, name) VALUES (?, ?, ?)",
    "channel": "INSERT INTO channels (id, account_id, name) VALUES (?, ?, ?)",
    "tenant": "INSERT INTO sandbox_tenants (account_id, created_at) VALUES (?, ?)",
    # `{rows}`: the SELECT of all the tenant's FRs, in the store's way (`tenant_statements`).
    "fr": f"INSERT INTO fulfillment_requests ({', '.join(_TENANT_FR_COLUMNS)}) {{rows}}",
    "accounting": "INSERT INTO fulfillment_request_accounting (id, account_id, source_id,"
    " channel_id, status, updated_at) VALUES (?, ?, ?, ?, 'Processed', ?)",
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
            (fr_id, f"FR-{fr_id}", account, source, fr_id, channel, "Processed", now, now)
            for fr_id in fr_ids
        ],
        "accounting": [(fr_id, account, source, channel, now) for fr_id in fr_ids],
        "item": items,
        "token": [
            (plan.token_hashes[kind], kind, scope, label, now)
            for kind, scope in zip(SCOPED_TOKEN_TYPES, (account, source, channel), strict=True)
        ],
    }
    return TenantIds(account, source, channel, fr_ids, {}), rows


def tenant_statements(
    rows: dict[str, list[tuple[Any, ...]]], many: ManyRows
) -> Iterator[tuple[str, str, list[tuple[Any, ...]]]]:
    """The statements creating a tenant, (kind, sql, rows) in foreign-key order. Its FRs go
    in one statement (`many`, the store's way of sending many rows): the kept counts'
    triggers (migration 0009) then run once on PostgreSQL, not once per FR."""
    for kind, statement in TENANT_SQL.items():
        if kind == "fr":
            select, values = many(_TENANT_FR_COLUMNS, rows[kind])
            yield kind, statement.format(rows=select), [values]
        else:
            yield kind, statement, rows[kind]


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
    if where.account_id is not None:
        terms.append("account_id = ?")
        params.append(where.account_id)
    if where.before_id is not None:
        terms.append("id < ?")
        params.append(where.before_id)
    sql = f"SELECT id, {', '.join(JOURNAL_COLUMNS)} FROM sandbox_journal"
    if terms:
        sql += " WHERE " + " AND ".join(terms)
    return sql + " ORDER BY id DESC LIMIT ?", [*params, where.limit]


ACCOUNT_OF = {
    "account": "SELECT id FROM accounts WHERE id = ?",
    "source": "SELECT account_id FROM sources WHERE id = ?",
    "channel": "SELECT account_id FROM channels WHERE id = ?",
}
_RULE_COLUMNS = "id, rule, remaining, account_id, skip_left"
_LIVE = "(remaining IS NULL OR remaining > 0)"
RULES_SQL = f"SELECT {_RULE_COLUMNS} FROM sandbox_faults WHERE {_LIVE} ORDER BY id"


def rules_query(where: RuleFilter) -> tuple[str, list[Any]]:
    """A page of live rules in creation order, every rule or one tenant's."""
    sql = f"SELECT {_RULE_COLUMNS} FROM sandbox_faults WHERE {_LIVE} AND id > ?"
    params: list[Any] = [where.after_id]
    if where.account_id is not None:
        sql += " AND account_id = ?"
        params.append(where.account_id)
    return sql + " ORDER BY id LIMIT ?", [*params, where.limit]


FIRE_SQL = "UPDATE sandbox_faults SET remaining = remaining - 1 WHERE id = ? AND remaining > 0"
SKIP_SQL = "UPDATE sandbox_faults SET skip_left = skip_left - 1 WHERE id = ? AND skip_left > 0"
# Spent rules go when a rule is added: they count toward no bound and match nothing.
PURGE_SPENT = "DELETE FROM sandbox_faults WHERE remaining = 0"
COUNT_RULES = "SELECT COUNT(*) FROM sandbox_faults"
COUNT_TENANT_RULES = "SELECT COUNT(*) FROM sandbox_faults WHERE account_id = ?"
ADD_RULE = (
    "INSERT INTO sandbox_faults (rule, remaining, created_at, account_id, skip_left)"
    " VALUES (?, ?, ?, ?, ?) RETURNING id"
)
DELETE_RULE = "DELETE FROM sandbox_faults WHERE id = ?"
DELETE_TENANT_RULE = "DELETE FROM sandbox_faults WHERE id = ? AND account_id = ?"
CLEAR_TENANT_RULES = "DELETE FROM sandbox_faults WHERE account_id = ?"
CLEAR_TENANT_JOURNAL = "DELETE FROM sandbox_journal WHERE account_id = ?"
LIVE_TENANT = "SELECT 1 FROM sandbox_tenants WHERE account_id = ? AND removed_at IS NULL"
NEXT_TENANT_ID = "SELECT value FROM sandbox_state WHERE name = ?"
ISSUED_IDS = (
    "SELECT id, token_type FROM api_tokens WHERE scope_id IN (?, ?, ?) AND token_type <> 'operator'"
)


def rule_bound_error(total: int, of_tenant: int | None) -> str | None:
    """Why one more rule may not be added, or None."""
    if of_tenant is not None and of_tenant >= MAX_TENANT_RULES:
        return f"A tenant holds at most {MAX_TENANT_RULES:,} fault rules; delete some first."
    if total >= MAX_RULES:
        return f"The sandbox holds at most {MAX_RULES:,} fault rules; delete some first."
    return None
