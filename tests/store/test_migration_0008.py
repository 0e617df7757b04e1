"""Migration 0008 moves every FR's accounting state to its own table and back, intact.

A database holding FRs at revision 0007 (accounting columns on `fulfillment_requests`) is
upgraded: each FR reads the same through the two tables, and the accounting table's copies of
the scope columns and status equal the FR's. Downgraded, the wide table holds it all again;
upgraded once more, the same again. On SQLite and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from alembic import command

from frsync.store.upgrade import alembic_config
from tests.support import run_sql

# synced, external id, error, synced at: every kind of state the columns can hold.
STATES = [
    (None, None, None, None),
    (True, "QB-INV-1", None, 1_700_000_000_000),
    (False, None, "Vendor not mapped", None),
    (False, "QB-INV-2", "", None),
    (None, None, "Rate limited", None),
    (True, "QB-INV-3", "", 1_700_000_100_000),
]
FRS = 60
_FR_0007 = (
    "id, fulfillment_request_number, account_id, source_id, order_id, channel_id, status,"
    " generated_at, sent_at, acknowledged_at, updated_at, accounting_synced,"
    " external_accounting_id, accounting_error, accounting_synced_at"
)
_INSERT_FR = f"INSERT INTO fulfillment_requests ({_FR_0007}) VALUES ({', '.join(['?'] * 15)})"
_READ_0007 = f"SELECT {_FR_0007} FROM fulfillment_requests ORDER BY id"
_READ_0008 = (
    "SELECT f.id, f.fulfillment_request_number, f.account_id, f.source_id, f.order_id,"
    " f.channel_id, f.status, f.generated_at, f.sent_at, f.acknowledged_at, a.updated_at,"
    " a.accounting_synced, a.external_accounting_id, a.accounting_error,"
    " a.accounting_synced_at FROM fulfillment_requests AS f"
    " JOIN fulfillment_request_accounting AS a ON a.id = f.id ORDER BY f.id"
)
_COPIES = (
    "SELECT f.account_id, f.source_id, f.channel_id, f.status,"
    " a.account_id, a.source_id, a.channel_id, a.status"
    " FROM fulfillment_requests AS f JOIN fulfillment_request_accounting AS a ON a.id = f.id"
)


def _frs() -> list[tuple[Any, ...]]:
    rows = []
    for fr_id in range(1, FRS + 1):
        synced, ext, error, synced_at = STATES[fr_id % len(STATES)]
        account = 1 + fr_id % 2
        channel = None if fr_id % 3 == 0 else 20 + account
        status = ("Processed", "Sent", "Acknowledged")[fr_id % 3]
        rows.append((fr_id, f"FR-{fr_id}", account, 10 + account, 5000 + fr_id, channel, status,
                     1000 + fr_id, 2000 + fr_id, None, 10_000 + fr_id, synced, ext, error,
                     synced_at))  # fmt: skip
    return rows


_SETUP = [
    ("INSERT INTO accounts (id, name) VALUES (?, ?)", [(1, "A"), (2, "B")]),
    ("INSERT INTO sources (id, account_id, name) VALUES (?, ?, ?)", [(11, 1, "S"), (12, 2, "T")]),
    ("INSERT INTO channels (id, account_id, name) VALUES (?, ?, ?)", [(21, 1, "C"), (22, 2, "D")]),
    (_INSERT_FR, _frs()),
]


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


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_url(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[str]:
    """A database with no schema yet."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    server: str = request.getfixturevalue("postgres_url")  # skips or fails as the suite does
    name = f"frsync_test_0008_{uuid.uuid4().hex[:10]}"
    asyncio.run(run_sql(server, f'CREATE DATABASE "{name}"'))
    yield server.rsplit("/", 1)[0] + f"/{name}"
    asyncio.run(run_sql(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def test_every_frs_accounting_state_survives_the_upgrade_and_the_downgrade(empty_url: str) -> None:
    config = alembic_config(empty_url)
    command.upgrade(config, "0007_patch_batch")
    database = Database(empty_url)
    database.write(_SETUP)
    before = database.read(_READ_0007)
    assert len(before) == FRS

    command.upgrade(config, "0008_narrow_accounting")
    assert database.read(_READ_0008) == before
    for row in database.read(_COPIES):
        assert row[:4] == row[4:]

    command.downgrade(config, "0007_patch_batch")
    assert database.read(_READ_0007) == before

    command.upgrade(config, "head")
    assert database.read(_READ_0008) == before
