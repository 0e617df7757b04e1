"""SQL text of the console's queries, shared by both backends.

Written with `?` placeholders; the PostgreSQL backend renumbers them
(`store.placeholders.numbered`). Where the dialects differ (JSON, GREATEST, SQLite's index
hints) a builder takes `postgres`. Column names come from constants; every value is bound.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from frsync.contract import canonical_int
from frsync.domain import Principal
from frsync.models import HistoryEntry
from frsync.store.queries import HAS_ERROR, scope_term
from frsync.store.rows import FR_JOIN, FR_SELECT, ITEM_COLUMNS, history_from_row

# The accounting state (store/schema.py): the Errors view's counts and pages read its indexes.
ACCOUNTING = "fulfillment_request_accounting"


class Binds:
    """Values in placeholder order, for a scope term built before the SQL is finished."""

    def __init__(self) -> None:
        self.values: list[Any] = []

    def __call__(self, value: Any) -> str:
        self.values.append(value)
        return "?"


def scoped(principal: Principal, binds: Binds, table: str = "") -> str:
    """`AND <scope term>`, or nothing for an operator."""
    term = scope_term(principal, binds, table)
    return "" if term is None else f" AND {term}"


CREATE_SESSION = (
    "INSERT INTO console_sessions (session_hash, token_id, created_at, expires_at)"
    " VALUES (?, ?, ?, ?)"
)
DROP_EXPIRED_SESSIONS = "DELETE FROM console_sessions WHERE expires_at <= ?"
_SCOPE_NAME = (
    "CASE t.token_type"
    " WHEN 'account' THEN (SELECT name FROM accounts WHERE id = t.scope_id)"
    " WHEN 'source' THEN (SELECT name FROM sources WHERE id = t.scope_id)"
    " WHEN 'channel' THEN (SELECT name FROM channels WHERE id = t.scope_id) END"
)
# A token's sessions past its newest `keep` (the new one, bound first, always stays).
TRIM_SESSIONS = (
    "DELETE FROM console_sessions WHERE token_id = ? AND session_hash <> ?"
    " AND session_hash NOT IN (SELECT session_hash FROM console_sessions"
    "  WHERE token_id = ? AND session_hash <> ?"
    "  ORDER BY created_at DESC, session_hash DESC LIMIT ?)"
)


def trim_sessions(session_hash: bytes, token_id: int, keep: int) -> tuple[Any, ...]:
    """TRIM_SESSIONS's values: the new session and the `keep` - 1 before it stay."""
    return (token_id, session_hash, token_id, session_hash, keep - 1)


SESSION_PRINCIPAL = (
    f"SELECT t.id, t.token_type, t.scope_id, {_SCOPE_NAME}, t.token_hash"
    " FROM console_sessions AS s"
    " JOIN api_tokens AS t ON t.id = s.token_id"
    " WHERE s.session_hash = ? AND s.expires_at > ? AND t.revoked_at IS NULL"
)
END_SESSION = "DELETE FROM console_sessions WHERE session_hash = ?"


def syncs_per_hour(principal: Principal, since: int, postgres: bool) -> tuple[str, list[Any]]:
    """Per hour, the accounting-history entries that hold a change — one per applied PATCH
    that changed something, whichever fields it changed: those that set a (non-empty)
    accountingError are failed, every other one is synced. An entry with no change (older
    versions wrote one for a PATCH that changed nothing) is not a sync.

    Each entry's changes are parsed once, in a subquery the planner must not flatten
    (`OFFSET 0` / `LIMIT -1`): flattened, every reference would parse the JSON again."""
    binds = Binds()
    at_least = binds(since)  # bound in the order the placeholders appear
    join = scope = ""
    if not principal.is_operator:
        # The day's entries first, then each one's FR: without statistics SQLite would
        # rather walk the whole scope's FRs and look up their history (CROSS JOIN keeps
        # the order there; PostgreSQL's planner has statistics).
        kind = "JOIN" if postgres else "CROSS JOIN"
        join = f" {kind} fulfillment_requests AS f ON f.id = h.fulfillment_request_id"
        scope = scoped(principal, binds, "f.")
    if postgres:
        parsed = (
            "SELECT hour, c #>> '{accountingError,after}' AS e FROM (SELECT h.at / 3600000"
            f" AS hour, h.changes::jsonb AS c FROM accounting_history AS h{join}"
            f" WHERE h.at >= {at_least}{scope} OFFSET 0) AS entries WHERE c <> '{{}}'::jsonb"
        )
    else:
        parsed = (
            "SELECT h.at / 3600000 AS hour,"
            " json_extract(h.changes, '$.accountingError.after') AS e"
            f" FROM accounting_history AS h INDEXED BY ix_history_at{join}"
            f" WHERE h.at >= {at_least}{scope} AND json(h.changes) <> '{{}}' LIMIT -1"
        )
    failed = "COALESCE(e <> '', FALSE)"
    sql = (
        f"SELECT hour, SUM(CASE WHEN {failed} THEN 0 ELSE 1 END),"
        f" SUM(CASE WHEN {failed} THEN 1 ELSE 0 END) FROM ({parsed}) AS day"
        " GROUP BY hour ORDER BY hour"
    )
    return sql, binds.values


def top_errors(principal: Principal, limit: int, postgres: bool) -> tuple[str, list[Any]]:
    binds = Binds()
    scope = "account" if principal.is_operator else principal.token_type
    hint = "" if postgres else f" INDEXED BY ix_fr_{scope}_has_error"
    sql = (
        f"SELECT accounting_error, COUNT(*) AS n FROM {ACCOUNTING}{hint}"
        f" WHERE {HAS_ERROR}{scoped(principal, binds)}"
        f" GROUP BY accounting_error ORDER BY n DESC, accounting_error LIMIT {binds(limit)}"
    )
    return sql, binds.values


def errors_page(
    principal: Principal,
    before: tuple[int, int] | None,
    limit: int,
    postgres: bool,
    message: str | None = None,
) -> tuple[str, list[Any]]:
    binds = Binds()
    index = (
        "ix_fr_error_recent"
        if principal.is_operator
        else (f"ix_fr_{principal.token_type}_error_recent")
    )
    hint = "" if postgres else f" INDEXED BY {index}"
    where = f"a.{HAS_ERROR}{scoped(principal, binds, 'a.')}"
    if message is not None:
        where += f" AND a.accounting_error = {binds(message)}"
    if before is not None:
        where += f" AND (a.updated_at, a.id) < ({binds(before[0])}, {binds(before[1])})"
    # The page from the accounting state's index, then each FR's number by primary key.
    sql = (
        "SELECT a.id, f.fulfillment_request_number, a.account_id, a.status, a.updated_at,"
        f" a.accounting_error FROM {ACCOUNTING} AS a{hint}"
        f" CROSS JOIN fulfillment_requests AS f WHERE f.id = a.id AND {where}"
        f" ORDER BY a.updated_at DESC, a.id DESC LIMIT {binds(limit)}"
    )
    return sql, binds.values


def count_errors(principal: Principal, message: str, postgres: bool) -> tuple[str, list[Any]]:
    """FRs in scope whose error is exactly `message`."""
    binds = Binds()
    scope = "account" if principal.is_operator else principal.token_type
    hint = "" if postgres else f" INDEXED BY ix_fr_{scope}_has_error"
    where = f"{HAS_ERROR}{scoped(principal, binds)} AND accounting_error = {binds(message)}"
    return f"SELECT COUNT(*) FROM {ACCOUNTING}{hint} WHERE {where}", binds.values


def find(principal: Principal, column: str, value: Any, limit: int) -> tuple[str, list[Any]]:
    """Ids of FRs in scope whose `column` (id or number) equals `value`."""
    assert column in ("id", "fulfillment_request_number")
    binds = Binds()
    where = f"{column} = {binds(value)}{scoped(principal, binds)}"
    sql = f"SELECT id FROM fulfillment_requests WHERE {where} ORDER BY id LIMIT {binds(limit)}"
    return sql, binds.values


def fr_in_scope(principal: Principal, fr_id: int) -> tuple[str, list[Any]]:
    binds = Binds()
    where = f"f.id = {binds(fr_id)}{scoped(principal, binds, 'f.')}"
    return f"SELECT {', '.join(FR_SELECT)} FROM {FR_JOIN} WHERE {where}", binds.values


ITEMS = (
    f"SELECT {', '.join(ITEM_COLUMNS)} FROM fulfillment_request_items"
    " WHERE fulfillment_request_id = ? ORDER BY id"
)


def history_page(fr_id: int, before_id: int | None, limit: int) -> tuple[str, list[Any]]:
    binds = Binds()
    where = f"fulfillment_request_id = {binds(fr_id)}"
    if before_id is not None:
        where += f" AND id < {binds(before_id)}"
    sql = (
        "SELECT id, at, token_id, token_type, request_id, changes FROM accounting_history"
        f" WHERE {where} ORDER BY id DESC LIMIT {binds(limit)}"
    )
    return sql, binds.values


TOKENS_PAGE = (
    f"SELECT t.id, t.token_type, t.scope_id, {_SCOPE_NAME},"
    " t.label, t.created_at, t.revoked_at, l.last_used_at,"
    " COALESCE(u.requests, 0), COALESCE(u.rate_limited, 0)"
    " FROM api_tokens AS t"
    " LEFT JOIN token_last_used AS l ON l.token_id = t.id"
    " LEFT JOIN (SELECT token_id, SUM(requests) AS requests, SUM(rate_limited) AS rate_limited"
    "  FROM token_usage WHERE minute >= ? GROUP BY token_id) AS u ON u.token_id = t.id"
    " WHERE t.id > ? ORDER BY t.id LIMIT ?"
)

# The usage flush's statements, for both stores from one text: PostgreSQL binds one row per
# execution (`executemany`; the token id is bound twice, the check reads its own), SQLite
# reads every row from one JSON array (console/store_sqlite.py says why).
BOUND_ROW = ("CAST(? AS BIGINT)", "CAST(? AS BIGINT)", "CAST(? AS INTEGER)", "CAST(? AS INTEGER)")
JSON_ROWS = " FROM json_each(?)"
JSON_ROW = tuple(f"json_extract(value, '$[{n}]')" for n in range(4))


def add_usage(values: Sequence[str], rows: str = "") -> str:
    """Each row's counts added to `token_usage`: `values` the four columns' expressions
    (the token id first), `rows` the FROM clause they come from, if any. A token deleted
    since its requests were counted takes its counts with it."""
    return (
        "INSERT INTO token_usage (token_id, minute, requests, rate_limited)"
        f" SELECT {', '.join(values)}{rows}"
        f" WHERE EXISTS (SELECT 1 FROM api_tokens WHERE id = {values[0]})"
        " ON CONFLICT (token_id, minute) DO UPDATE SET"
        " requests = token_usage.requests + excluded.requests,"
        " rate_limited = token_usage.rate_limited + excluded.rate_limited"
    )


DROP_OLD_USAGE = "DELETE FROM token_usage WHERE minute < ?"


def add_last_used(postgres: bool, values: Sequence[str], rows: str = "") -> str:
    """Each row's last use kept in `token_last_used` if it is the latest; the arguments as
    `add_usage`'s, with two values."""
    latest = "GREATEST" if postgres else "MAX"  # SQLite's two-argument MAX is the same
    return (
        "INSERT INTO token_last_used (token_id, last_used_at)"
        f" SELECT {', '.join(values)}{rows}"
        f" WHERE EXISTS (SELECT 1 FROM api_tokens WHERE id = {values[0]})"
        f" ON CONFLICT (token_id) DO UPDATE SET last_used_at ="
        f" {latest}(token_last_used.last_used_at, excluded.last_used_at)"
    )


def lookups(text: str) -> list[tuple[str, Any]]:
    """What a search for `text` tries, in order: the id (when it is one), then the number."""
    text = text.strip()
    tries: list[tuple[str, Any]] = []
    fr_id = canonical_int(text)  # the API's one integer rule: `0221` is not an id
    if fr_id is not None and 0 < fr_id < 2**63:
        tries.append(("id", fr_id))
    if text:
        tries.append(("fulfillment_request_number", text))
    return tries


def timeline(rows: Sequence[Sequence[Any]]) -> list[HistoryEntry]:
    """Rows of `history_page` → entries with their ids."""
    return [history_from_row(row) for row in rows]
