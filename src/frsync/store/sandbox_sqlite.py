"""Sandbox mode on SQLite: the shared statements through the store's own transaction and query
primitives, so the sandbox writes queue with every other write of the process."""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Any

from frsync.models import TokenType, now_ms
from frsync.store import sandbox_sql as sql
from frsync.store.sandbox_base import (
    JOURNAL_KEEP,
    NEXT_ID,
    TENANT_ID_BASE,
    JournalEntry,
    JournalFilter,
    StoredRule,
    TenantIds,
    TenantPlan,
)

if TYPE_CHECKING:  # the store imports this module for `take_baseline`
    from frsync.store.sqlite import SqliteStore


_RESTORE = (*sql.restore("IS NOT", f"IN ({sql.TOUCHED})"), sql.FORGET_HISTORY)


def take_baseline(db: sqlite3.Connection) -> None:
    """Inside a load's transaction: remember what the load leaves, for `reset`."""
    for statement in sql.TAKE_BASELINE:
        db.execute(statement)


def _reset(db: sqlite3.Connection) -> None:
    now = now_ms()
    for (account_id,) in db.execute(sql.LIVE_TENANTS).fetchall():
        for statement, params in sql.removal(account_id, now):
            db.execute(statement, params)
    row = db.execute(sql.BASELINE_MARK_SQL).fetchone()
    if row is not None:  # no load since sandbox mode existed: nothing to go back to
        for statement in _RESTORE:
            db.execute(statement, (row[0],))
    db.execute(sql.CLEAR_RULES)
    db.execute(sql.CLEAR_JOURNAL)


def _create_tenant(db: sqlite3.Connection, plan: TenantPlan) -> TenantIds:
    count = plan.id_count
    (last,) = db.execute(sql.RESERVE_IDS, (NEXT_ID, TENANT_ID_BASE + count, count)).fetchone()
    ids, rows = sql.tenant_rows(plan, int(last) - count)
    for kind, statement in sql.TENANT_SQL.items():
        db.executemany(statement, rows[kind])
    return ids


def _delete_tenant(db: sqlite3.Connection, account_id: int, now: int) -> bool | None:
    row = db.execute(sql.TENANT_STATE, (account_id,)).fetchone()
    if row is None:
        return None
    if row[0] is not None:
        return False
    for statement, params in sql.removal(account_id, now):
        db.execute(statement, params)
    return True


def _record(db: sqlite3.Connection, entry: JournalEntry) -> None:
    (entry_id,) = db.execute(sql.JOURNAL_INSERT, _journal_row(entry)).fetchone()
    if entry_id > JOURNAL_KEEP:
        db.execute(sql.JOURNAL_TRIM, (entry_id - JOURNAL_KEEP,))


def _journal_row(entry: JournalEntry) -> tuple[Any, ...]:
    return tuple(getattr(entry, column) for column in sql.JOURNAL_COLUMNS)


class SqliteSandboxStore:
    def __init__(self, store: SqliteStore) -> None:
        self._store = store

    async def reset(self) -> None:
        await self._store.transaction(_reset)

    async def create_tenant(self, plan: TenantPlan) -> TenantIds:
        return await self._store.transaction(lambda db: _create_tenant(db, plan))

    async def delete_tenant(self, account_id: int, now: int) -> bool | None:
        return await self._store.transaction(lambda db: _delete_tenant(db, account_id, now))

    async def add_rule(self, rule: str, remaining: int | None, now: int) -> int:
        row = await self._store.transaction(
            lambda db: db.execute(sql.ADD_RULE, (rule, remaining, now)).fetchone()
        )
        return int(row[0])

    async def rules(self) -> list[StoredRule]:
        rows = await self._store.read(lambda db: db.execute(sql.RULES_SQL).fetchall())
        return [StoredRule(*row) for row in rows]

    async def fire(self, rule_id: int) -> bool:
        count = await self._store.transaction(
            lambda db: db.execute(sql.FIRE_SQL, (rule_id,)).rowcount
        )
        return bool(count == 1)

    async def delete_rule(self, rule_id: int) -> bool:
        count = await self._store.transaction(
            lambda db: db.execute(sql.DELETE_RULE, (rule_id,)).rowcount
        )
        return bool(count == 1)

    async def clear_rules(self) -> None:
        await self._store.transaction(lambda db: db.execute(sql.CLEAR_RULES))

    async def account_of(self, token_type: TokenType, scope_id: int) -> int | None:
        if token_type not in sql.ACCOUNT_OF:
            return None
        statement = sql.ACCOUNT_OF[token_type]
        row = await self._store.read(lambda db: db.execute(statement, (scope_id,)).fetchone())
        return None if row is None else int(row[0])

    async def record(self, entry: JournalEntry) -> None:
        await self._store.transaction(lambda db: _record(db, entry))

    async def journal(self, where: JournalFilter) -> list[tuple[Any, ...]]:
        statement, params = sql.journal_query(where)
        rows = await self._store.read(lambda db: db.execute(statement, params).fetchall())
        return [(*row[:-1], bool(row[-1])) for row in rows]

    async def clear_journal(self) -> None:
        await self._store.transaction(lambda db: db.execute(sql.CLEAR_JOURNAL))
