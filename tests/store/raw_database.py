"""A database at any migration revision, written and read with plain SQL (`?` marks on both
backends): how the migration tests put rows in at an old revision and read them back."""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any


class Database:
    """Statements with `?` marks on SQLite or PostgreSQL."""

    def __init__(self, url: str) -> None:
        self.url = url

    def write(self, statements: list[tuple[str, list[tuple[Any, ...]]]]) -> None:
        if self.url.startswith("sqlite"):
            with sqlite3.connect(self.url.removeprefix("sqlite:///")) as db:
                for sql, rows in statements:
                    db.executemany(sql, rows)
            return
        asyncio.run(self._pg_write(statements))

    def read(self, sql: str) -> list[tuple[Any, ...]]:
        if self.url.startswith("sqlite"):
            with sqlite3.connect(self.url.removeprefix("sqlite:///")) as db:
                return [tuple(row) for row in db.execute(sql)]
        return asyncio.run(self._pg_read(sql))

    async def _pg_write(self, statements: list[tuple[str, list[tuple[Any, ...]]]]) -> None:
        import asyncpg

        from frsync.store.placeholders import numbered

        connection = await asyncpg.connect(self.url)
        try:
            async with connection.transaction():
                for sql, rows in statements:
                    await connection.executemany(numbered(sql), rows)
        finally:
            await connection.close()

    async def _pg_read(self, sql: str) -> list[tuple[Any, ...]]:
        import asyncpg

        connection = await asyncpg.connect(self.url)
        try:
            return [tuple(row) for row in await connection.fetch(sql)]
        finally:
            await connection.close()
