"""The console's queries on SQLite, through the store's own read and write primitives
(`read`, `transaction`), so they share its connection, locking and 503 mapping."""

from __future__ import annotations

import sqlite3
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
from frsync.store.placeholders import qmark
from frsync.store.rows import fr_from_row
from frsync.store.sqlite import SqliteStore
from frsync.store.sqlite_sync import json_param

# The usage flush as one statement per table over a JSON array (the recorder hands the rows
# over in token order, so each statement walks the indexes in order). Row by row
# (`executemany`) the writer thread had to win the GIL back from the busy event loop for
# every row while it held the write lock: a flush of 2,000 tokens held it 15-23 ms every two
# seconds, and every PATCH waited behind it (the p99 at 1,000 PATCH/s). One statement is one
# step of SQLite's with the GIL let go; and `write_statements` runs them in `serve`'s write
# process, which holds no GIL of a busy loop.
_ADD_USAGE = sql.add_usage(sql.JSON_ROW, sql.JSON_ROWS)
_LAST_USED = sql.add_last_used(False, sql.JSON_ROW[:2], sql.JSON_ROWS)


class ConsoleSqlite(ScopedReads):
    """Small reads and every write through the store's own primitives; the big reads of the
    Overview, Errors and Tokens views off the event loop (`SqliteStore.read_off_loop`)."""

    postgres = False

    def __init__(self, store: SqliteStore) -> None:
        self._store = store

    async def _rows(self, statement: str, params: Sequence[Any]) -> list[Any]:
        return await self._store.read(lambda db: db.execute(statement, params).fetchall())

    async def _big(self, statement: str, params: Sequence[Any]) -> list[Any]:
        return await self._store.read_off_loop(lambda db: db.execute(statement, params).fetchall())

    async def count(self, principal: Principal, query: FrQuery) -> int:
        sql_text, params = queries.count_sql(principal, query, placeholder=qmark, hints=True)
        (row,) = await self._big(sql_text, params)
        return int(row[0])

    async def close(self) -> None:
        """Nothing of its own to close: the read connections are the store's."""

    async def create_session(
        self, session_hash: bytes, token_id: int, now: int, expires_at: int, keep: int
    ) -> None:
        def write(db: sqlite3.Connection) -> None:
            db.execute(sql.DROP_EXPIRED_SESSIONS, (now,))
            db.execute(sql.CREATE_SESSION, (session_hash, token_id, now, expires_at))
            db.execute(sql.TRIM_SESSIONS, sql.trim_sessions(session_hash, token_id, keep))

        await self._store.transaction(write)

    async def session_principal(self, session_hash: bytes, now: int) -> SignedIn | None:
        rows = await self._rows(sql.SESSION_PRINCIPAL, (session_hash, now))
        return SignedIn(Principal(*rows[0][:3]), rows[0][3], bytes(rows[0][4])) if rows else None

    async def end_session(self, session_hash: bytes) -> None:
        await self._store.transaction(lambda db: db.execute(sql.END_SESSION, (session_hash,)))

    async def find(self, principal: Principal, text: str, limit: int) -> list[int]:
        def read(db: sqlite3.Connection) -> list[int]:
            for column, value in sql.lookups(text):
                ids = [r[0] for r in db.execute(*sql.find(principal, column, value, limit))]
                if ids:
                    return ids
            return []

        return await self._store.read(read)

    async def detail(
        self, principal: Principal, fr_id: int, before_id: int | None, limit: int
    ) -> FrDetail | None:
        def read(db: sqlite3.Connection) -> FrDetail | None:
            row = db.execute(*sql.fr_in_scope(principal, fr_id)).fetchone()
            if row is None:
                return None
            items = db.execute(sql.ITEMS, (fr_id,)).fetchall()
            history = db.execute(*sql.history_page(fr_id, before_id, limit)).fetchall()
            return FrDetail(fr_from_row(row, items), sql.timeline(history))

        return await self._store.read(read)

    async def add_usage(
        self, counts: Sequence[UsageCount], last_used: dict[int, int], keep_from: int
    ) -> None:
        usage = json_param([(c.token_id, c.minute, c.requests, c.rate_limited) for c in counts])
        used = json_param(list(last_used.items()))

        await self._store.write_statements(
            [(_ADD_USAGE, (usage,)), (_LAST_USED, (used,)), (sql.DROP_OLD_USAGE, (keep_from,))]
        )
