"""Sandbox mode on SQLite: the shared statements through the store's own transaction and query
primitives, so the sandbox writes queue with every other write of the process (a reset on the
writer thread is atomic against every PATCH: they run one after the other)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from frsync.domain import Principal
from frsync.models import TokenType
from frsync.sandbox import sql
from frsync.sandbox.store import (
    JOURNAL_MAX_BYTES,
    JOURNAL_MAX_ROWS,
    NEXT_ID,
    TENANT_ID_BASE,
    JournalEntry,
    JournalFilter,
    NewRule,
    RuleFilter,
    StoredRule,
    TenantIds,
    TenantPlan,
    TooManyRules,
)
from frsync.store.sqlite import json_rows

if TYPE_CHECKING:
    from frsync.store.sqlite import SqliteStore


_RESTORE = (*sql.restore("IS NOT", f"IN ({sql.TOUCHED})"), sql.FORGET_HISTORY)


def take_baseline(db: sqlite3.Connection) -> None:
    """The store's after-load hook: remember what the load leaves, for a reset."""
    for statement in sql.TAKE_BASELINE:
        db.execute(statement)


def _reset(db: sqlite3.Connection) -> None:
    db.execute(sql.CLEAR_TENANTS)  # their rows go in `purge_removed_tenants`
    row = db.execute(sql.BASELINE_MARK_SQL).fetchone()
    if row is not None:  # no load since sandbox mode existed: nothing to go back to
        for statement in _RESTORE:
            db.execute(statement, (row[0],))
    db.execute(sql.CLEAR_RULES)
    db.execute(sql.BUMP_RULES_VERSION)
    db.execute(sql.CLEAR_JOURNAL)


def _create_tenant(db: sqlite3.Connection, plan: TenantPlan) -> TenantIds:
    count = plan.id_count
    (last,) = db.execute(sql.RESERVE_IDS, (NEXT_ID, TENANT_ID_BASE + count, count)).fetchone()
    ids, rows = sql.tenant_rows(plan, int(last) - count)
    for _, statement, params in sql.tenant_statements(rows, json_rows):
        db.executemany(statement, params)
    first = ids.account_id
    token_rows = db.execute(sql.ISSUED_IDS, (first, first + 1, first + 2)).fetchall()
    ids.token_ids.update({kind: int(token_id) for token_id, kind in token_rows})
    return ids


def _delete_tenant(db: sqlite3.Connection, account_id: int) -> bool | None:
    if db.execute(sql.LIVE_TENANT, (account_id,)).fetchone() is None:
        row = db.execute(sql.NEXT_TENANT_ID, (NEXT_ID,)).fetchone()
        return False if row and TENANT_ID_BASE <= account_id < row[0] else None
    for statement, params in sql.removal(account_id):
        db.execute(statement, params)
    db.execute(sql.BUMP_RULES_VERSION)
    return True


def _purge_chunk(db: sqlite3.Connection) -> int:
    rows = db.execute(sql.PURGE_CANDIDATES, (TENANT_ID_BASE, sql.PURGE_CHUNK)).fetchall()
    for (account_id,) in rows:
        for statement, params in sql.removal(account_id):
            db.execute(statement, params)
    return len(rows)


def _add_rule(db: sqlite3.Connection, rule: NewRule) -> int:
    db.execute(sql.PURGE_SPENT)
    (total,) = db.execute(sql.COUNT_RULES).fetchone()
    of_tenant = None
    if rule.account_id is not None:
        (of_tenant,) = db.execute(sql.COUNT_TENANT_RULES, (rule.account_id,)).fetchone()
    refused = sql.rule_bound_error(total, of_tenant)
    if refused:
        raise TooManyRules(refused)
    params = (rule.rule, rule.remaining, rule.now, rule.account_id, rule.skip)
    (rule_id,) = db.execute(sql.ADD_RULE, params).fetchone()
    db.execute(sql.BUMP_RULES_VERSION)
    return int(rule_id)


def _changed(
    statement: str, params: tuple[Any, ...], bump: bool = False
) -> Callable[[sqlite3.Connection], int]:
    def work(db: sqlite3.Connection) -> int:
        count = db.execute(statement, params).rowcount
        if bump:
            db.execute(sql.BUMP_RULES_VERSION)
        return int(count)

    return work


def _record(db: sqlite3.Connection, entry: JournalEntry) -> None:
    (entry_id,) = db.execute(sql.JOURNAL_INSERT, _journal_row(entry)).fetchone()
    if entry_id % sql.JOURNAL_TRIM_EVERY == 0:
        _trim_account(db, entry.account_id)
    if entry_id % sql.JOURNAL_CHECK_EVERY == 0:
        rows, size = db.execute(sql.JOURNAL_TOTALS).fetchone()
        if rows > JOURNAL_MAX_ROWS or size > JOURNAL_MAX_BYTES:
            cut = (JOURNAL_MAX_BYTES * 9 // 10, JOURNAL_MAX_ROWS * 9 // 10)
            row = db.execute(sql.JOURNAL_CUT, cut).fetchone()
            if row is not None:
                db.execute(sql.JOURNAL_TRIM, (row[0],))


def _trim_account(db: sqlite3.Connection, account: int | None) -> None:
    unknown = account is None
    keep = sql.journal_keep(account)
    params: tuple[Any, ...] = (keep,) if unknown else (account, keep)
    row = db.execute(sql.JOURNAL_KEEP_FROM[unknown], params).fetchone()
    if row is not None:
        db.execute(sql.JOURNAL_TRIM_ACCOUNT[unknown], (row[0],) if unknown else (account, row[0]))


def _journal_row(entry: JournalEntry) -> tuple[Any, ...]:
    return (*(getattr(entry, column) for column in sql.JOURNAL_COLUMNS), entry.size)


class SqliteSandboxStore:
    def __init__(self, store: SqliteStore) -> None:
        self._store = store

    async def reset(self) -> None:
        await self._store.transaction(_reset)

    async def create_tenant(self, plan: TenantPlan) -> TenantIds:
        return await self._store.transaction(lambda db: _create_tenant(db, plan))

    async def delete_tenant(self, account_id: int) -> bool | None:
        return await self._store.transaction(lambda db: _delete_tenant(db, account_id))

    async def purge_removed_tenants(self) -> int:
        return await self._store.transaction(_purge_chunk)

    async def request_state(self, account_id: int | None) -> tuple[int, bool]:
        row = await self._read(sql.REQUEST_STATE, (account_id,))
        return int(row[0] or 0), bool(row[1])

    async def is_tenant(self, account_id: int) -> bool:
        row = await self._read(sql.LIVE_TENANT, (account_id,))
        return row is not None

    async def add_rule(self, rule: NewRule) -> int:
        return await self._store.transaction(lambda db: _add_rule(db, rule))

    async def rules(self) -> list[StoredRule]:
        rows = await self._store.read(lambda db: db.execute(sql.RULES_SQL).fetchall())
        return [StoredRule(*row) for row in rows]

    async def list_rules(self, where: RuleFilter) -> list[StoredRule]:
        statement, params = sql.rules_query(where)
        rows = await self._store.read(lambda db: db.execute(statement, params).fetchall())
        return [StoredRule(*row) for row in rows]

    async def skip(self, rule_id: int) -> bool:
        return await self._store.transaction(_changed(sql.SKIP_SQL, (rule_id,))) == 1

    async def fire(self, rule_id: int) -> bool:
        return await self._store.transaction(_changed(sql.FIRE_SQL, (rule_id,))) == 1

    async def delete_rule(self, rule_id: int, account_id: int | None) -> bool:
        if account_id is None:
            work = _changed(sql.DELETE_RULE, (rule_id,), bump=True)
        else:
            work = _changed(sql.DELETE_TENANT_RULE, (rule_id, account_id), bump=True)
        return await self._store.transaction(work) == 1

    async def clear_rules(self, account_id: int | None) -> None:
        if account_id is None:
            await self._store.transaction(_changed(sql.CLEAR_RULES, (), bump=True))
        else:
            await self._store.transaction(
                _changed(sql.CLEAR_TENANT_RULES, (account_id,), bump=True)
            )

    async def account_of(self, token_type: TokenType, scope_id: int) -> int | None:
        if token_type not in sql.ACCOUNT_OF:
            return None
        row = await self._read(sql.ACCOUNT_OF[token_type], (scope_id,))
        return None if row is None else int(row[0])

    async def known_tokens(self, hashes: list[bytes]) -> set[bytes]:
        def read(db: sqlite3.Connection) -> set[bytes]:
            found: set[bytes] = set()
            for start in range(0, len(hashes), 500):  # SQLite binds at most 999 values
                chunk = hashes[start : start + 500]
                statement = sql.TOKENS_KNOWN.format(marks=", ".join("?" * len(chunk)))
                found.update(bytes(row[0]) for row in db.execute(statement, chunk))
            return found

        return await self._store.read(read)

    async def revoked_token(self, token_hash: bytes) -> Principal | None:
        row = await self._read(sql.REVOKED_BY_HASH, (token_hash,))
        return None if row is None else Principal(int(row[0]), row[1], int(row[2]))

    async def record(self, entry: JournalEntry) -> None:
        await self._store.transaction(lambda db: _record(db, entry))

    async def journal(self, where: JournalFilter) -> list[tuple[Any, ...]]:
        statement, params = sql.journal_query(where)
        rows = await self._store.read(lambda db: db.execute(statement, params).fetchall())
        return rows

    async def clear_journal(self, account_id: int | None) -> None:
        if account_id is None:
            await self._store.transaction(_changed(sql.CLEAR_JOURNAL, ()))
        else:
            await self._store.transaction(_changed(sql.CLEAR_TENANT_JOURNAL, (account_id,)))

    async def _read(self, statement: str, params: tuple[Any, ...]) -> Any:
        return await self._store.read(lambda db: db.execute(statement, params).fetchone())
