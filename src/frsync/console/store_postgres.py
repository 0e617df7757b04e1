"""The console's queries on PostgreSQL, on the store's pool (`acquire`, `transaction`), so
they share its bounds on waiting and its error mapping."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from frsync.console import sql
from frsync.console.scoped_reads import ScopedReads
from frsync.console.store import (
    FrDetail,
    SignedIn,
    UsageCount,
)
from frsync.domain import Principal
from frsync.store import queries
from frsync.store.base import FrQuery
from frsync.store.placeholders import dollar, numbered
from frsync.store.postgres import PostgresStore
from frsync.store.rows import fr_from_row

_ADD_USAGE = numbered(sql.add_usage(sql.BOUND_ROW))
_LAST_USED = numbered(sql.add_last_used(True, sql.BOUND_ROW[:2]))
_ONE_SIGN_IN_AT_A_TIME = "SELECT 1 FROM api_tokens WHERE id = $1 FOR UPDATE"


class ConsolePostgres(ScopedReads):
    postgres = True

    def __init__(self, store: PostgresStore) -> None:
        self._store = store

    async def _rows(self, statement: str, params: Sequence[Any]) -> list[Any]:
        async with self._store.acquire() as connection:
            return list(await connection.fetch(numbered(statement), *params))

    async def _big(self, statement: str, params: Sequence[Any]) -> list[Any]:
        return await self._rows(statement, params)  # the pool already keeps it off the loop

    async def create_session(
        self, session_hash: bytes, token_id: int, now: int, expires_at: int, keep: int
    ) -> None:
        async with self._store.transaction() as connection:
            # One sign-in of a token at a time, so two at once cannot both keep `keep` others.
            await connection.execute(_ONE_SIGN_IN_AT_A_TIME, token_id)
            await connection.execute(numbered(sql.DROP_EXPIRED_SESSIONS), now)
            await connection.execute(
                numbered(sql.CREATE_SESSION), session_hash, token_id, now, expires_at
            )
            trim = sql.trim_sessions(session_hash, token_id, keep)
            await connection.execute(numbered(sql.TRIM_SESSIONS), *trim)

    async def count(self, principal: Principal, query: FrQuery) -> int:
        statement, params = queries.count_sql(principal, query, placeholder=dollar)
        async with self._store.acquire() as connection:
            return int(await connection.fetchval(statement, *params))

    async def close(self) -> None:
        """Nothing of its own to close: the store's pool is the store's."""

    async def session_principal(self, session_hash: bytes, now: int) -> SignedIn | None:
        rows = await self._rows(sql.SESSION_PRINCIPAL, (session_hash, now))
        return SignedIn(Principal(*rows[0][:3]), rows[0][3], bytes(rows[0][4])) if rows else None

    async def end_session(self, session_hash: bytes) -> None:
        async with self._store.acquire() as connection:
            await connection.execute(numbered(sql.END_SESSION), session_hash)

    async def find(self, principal: Principal, text: str, limit: int) -> list[int]:
        async with self._store.acquire() as connection:
            for column, value in sql.lookups(text):
                statement, params = sql.find(principal, column, value, limit)
                rows = await connection.fetch(numbered(statement), *params)
                if rows:
                    return [row[0] for row in rows]
        return []

    async def detail(
        self, principal: Principal, fr_id: int, before_id: int | None, limit: int
    ) -> FrDetail | None:
        # One snapshot for the FR, its items and its history.
        async with self._store.transaction() as connection:
            statement, params = sql.fr_in_scope(principal, fr_id)
            row = await connection.fetchrow(numbered(statement), *params)
            if row is None:
                return None
            items = await connection.fetch(numbered(sql.ITEMS), fr_id)
            statement, params = sql.history_page(fr_id, before_id, limit)
            history = await connection.fetch(numbered(statement), *params)
        return FrDetail(fr_from_row(row, items), sql.timeline(history))

    async def add_usage(
        self, counts: Sequence[UsageCount], last_used: dict[int, int], keep_from: int
    ) -> None:
        usage = [(c.token_id, c.minute, c.requests, c.rate_limited, c.token_id) for c in counts]
        used = [(token_id, at, token_id) for token_id, at in last_used.items()]
        async with self._store.transaction() as connection:
            if usage:
                await connection.executemany(_ADD_USAGE, usage)
            if used:
                await connection.executemany(_LAST_USED, used)
            await connection.execute(numbered(sql.DROP_OLD_USAGE), keep_from)
