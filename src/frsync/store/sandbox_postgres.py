"""Sandbox mode on PostgreSQL: the shared statements, numbered for asyncpg, through the
store's pool and transactions (so every bound and error translation of the store holds)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import asyncpg

from frsync.models import TokenType, now_ms
from frsync.store import sandbox_sql as sql
from frsync.store.placeholders import numbered
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
    from frsync.store.postgres import PostgresStore


pg = numbered  # `?` marks → `$1`, `$2`, …


# The touched FRs go in as an array: the planner then sees how few they are, and reaches
# their items through the index instead of scanning every item.
_RESTORE = tuple(pg(statement) for statement in sql.restore("IS DISTINCT FROM", "= ANY(?)"))


async def take_baseline(connection: asyncpg.Connection) -> None:
    """Inside a load's transaction: remember what the load leaves, for `reset`."""
    for statement in sql.TAKE_BASELINE:
        await connection.execute(statement)
    # Fresh statistics, or the planner takes the just-loaded tables for tiny ones and a reset
    # of a few FRs scans every item (autovacuum would analyze them only a minute or so later).
    await connection.execute(
        "ANALYZE fulfillment_requests, fulfillment_request_items, sandbox_baseline_frs,"
        " sandbox_baseline_items"
    )


async def _remove(connection: asyncpg.Connection, account_id: int, now: int) -> None:
    for statement, params in sql.removal(account_id, now):
        await connection.execute(pg(statement), *params)


class PostgresSandboxStore:
    def __init__(self, store: PostgresStore) -> None:
        self._store = store

    async def reset(self) -> None:
        now = now_ms()
        # Unbounded, like a load: after a test that changed every FR, a reset of a large
        # database legitimately takes longer than an API call may (lock waits stay bounded).
        async with self._store.transaction(bounded=False) as connection:
            for row in await connection.fetch(sql.LIVE_TENANTS):
                await _remove(connection, row[0], now)
            mark = await connection.fetchval(sql.BASELINE_MARK_SQL)
            if mark is not None:  # no load since sandbox mode existed: nothing to go back to
                rows = await connection.fetch(pg(sql.TOUCHED), mark)
                touched = [row[0] for row in rows]
                if touched:
                    for statement in _RESTORE:
                        await connection.execute(statement, touched)
                    await connection.execute(pg(sql.FORGET_HISTORY), mark)
            await connection.execute(sql.CLEAR_RULES)
            await connection.execute(sql.CLEAR_JOURNAL)

    async def create_tenant(self, plan: TenantPlan) -> TenantIds:
        count = plan.id_count
        async with self._store.transaction() as connection:
            last = await connection.fetchval(
                pg(sql.RESERVE_IDS), NEXT_ID, TENANT_ID_BASE + count, count
            )
            ids, rows = sql.tenant_rows(plan, int(last) - count)
            for kind, statement in sql.TENANT_SQL.items():
                await connection.executemany(pg(statement), rows[kind])
        return ids

    async def delete_tenant(self, account_id: int, now: int) -> bool | None:
        async with self._store.transaction() as connection:
            row = await connection.fetchrow(pg(sql.TENANT_STATE + " FOR UPDATE"), account_id)
            if row is None:
                return None
            if row[0] is not None:
                return False
            await _remove(connection, account_id, now)
        return True

    async def add_rule(self, rule: str, remaining: int | None, now: int) -> int:
        return int(await self._fetchval(sql.ADD_RULE, rule, remaining, now))

    async def rules(self) -> list[StoredRule]:
        async with self._store.acquire() as connection:
            rows = await connection.fetch(sql.RULES_SQL)
        return [StoredRule(*row) for row in rows]

    async def fire(self, rule_id: int) -> bool:
        return await self._execute(sql.FIRE_SQL, rule_id) == "UPDATE 1"

    async def delete_rule(self, rule_id: int) -> bool:
        return await self._execute(sql.DELETE_RULE, rule_id) == "DELETE 1"

    async def clear_rules(self) -> None:
        await self._execute(sql.CLEAR_RULES)

    async def account_of(self, token_type: TokenType, scope_id: int) -> int | None:
        if token_type not in sql.ACCOUNT_OF:
            return None
        account = await self._fetchval(sql.ACCOUNT_OF[token_type], scope_id)
        return None if account is None else int(account)

    async def record(self, entry: JournalEntry) -> None:
        values = [getattr(entry, column) for column in sql.JOURNAL_COLUMNS]
        async with self._store.acquire() as connection:
            entry_id = await connection.fetchval(pg(sql.JOURNAL_INSERT), *values)
            if entry_id > JOURNAL_KEEP:
                await connection.execute(pg(sql.JOURNAL_TRIM), entry_id - JOURNAL_KEEP)

    async def journal(self, where: JournalFilter) -> list[tuple[Any, ...]]:
        statement, params = sql.journal_query(where)
        async with self._store.acquire() as connection:
            rows = await connection.fetch(pg(statement), *params)
        return [tuple(row) for row in rows]

    async def clear_journal(self) -> None:
        await self._execute(sql.CLEAR_JOURNAL)

    async def _execute(self, statement: str, *args: Any) -> str:
        async with self._store.acquire() as connection:
            status: str = await connection.execute(pg(statement), *args)
        return status

    async def _fetchval(self, statement: str, *args: Any) -> Any:
        async with self._store.acquire() as connection:
            return await connection.fetchval(pg(statement), *args)
