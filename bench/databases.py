"""Create the benchmark databases: a SQLite file and a fresh PostgreSQL database, same rows."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import sqlite3
import time
from pathlib import Path

import asyncpg

from bench import dataset
from frsync.backends import open_store
from frsync.config import Settings
from frsync.store import migrate

PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
# One database per checkout: two checkouts benchmarking at once must not drop each other's.
PG_BENCH_DB = "frsync_bench_" + hashlib.sha1(str(Path(__file__).resolve()).encode()).hexdigest()[:8]
PG_URL = f"postgresql://postgres@127.0.0.1:5432/{PG_BENCH_DB}"
# Shared Redis servers hand out database numbers: BENCH_REDIS_URL picks another one.
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")


async def _load(url: str) -> None:
    store = await open_store(Settings(database_url=url))
    try:
        await store.load(dataset.batches())
    finally:
        await store.close()


def build_sqlite(pristine: Path) -> float:
    """Build the SQLite file once (kept in bench/.data between runs); seconds it took."""
    if pristine.exists():
        return 0.0
    started = time.perf_counter()
    partial = pristine.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    url = f"sqlite:///{partial}"
    migrate(url)
    asyncio.run(_load(url))
    partial.rename(pristine)
    return time.perf_counter() - started


def fresh_sqlite(pristine: Path, work: Path) -> str:
    """A copy of the pristine file, so each scenario starts from the same rows."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{work}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(pristine, work)
    return f"sqlite:///{work}"


async def _recreate_pg_database() -> None:
    admin = await asyncpg.connect(PG_ADMIN_URL, timeout=5)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {PG_BENCH_DB} WITH (FORCE)")
        await admin.execute(f"CREATE DATABASE {PG_BENCH_DB}")
    finally:
        await admin.close()


def build_postgres() -> float:
    """Drop and recreate `frsync_bench`, migrate, load; seconds it took."""
    started = time.perf_counter()
    asyncio.run(_recreate_pg_database())
    migrate(PG_URL)
    asyncio.run(_load(PG_URL))
    return time.perf_counter() - started


def _downgrade_to_0007(url: str) -> None:
    """Migration 0008's downgrade: the accounting state back on `fulfillment_requests`, where
    the baseline's code reads and writes it."""
    from alembic import command

    from frsync.store.upgrade import alembic_config

    command.downgrade(alembic_config(url), "0007_patch_batch")


def as_0005(url: str) -> str:
    """The database as the baseline's migrations left it (before 0007, which it does not
    know and would refuse): at 0007's schema, without the revoked-token index, at revision
    0005."""
    _downgrade_to_0007(url)
    with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
        db.execute("DROP INDEX IF EXISTS ix_api_tokens_revoked_at")
        db.execute("UPDATE alembic_version SET version_num = '0005_sync_accounting_function'")
    return url


async def _pg_as_0005() -> None:
    connection = await asyncpg.connect(PG_URL, timeout=5)
    try:
        await connection.execute("DROP INDEX IF EXISTS ix_api_tokens_revoked_at")
        await connection.execute(
            "UPDATE alembic_version SET version_num = '0005_sync_accounting_function'"
        )
    finally:
        await connection.close()


def pg_as_0005() -> str:
    """`as_0005` for the PostgreSQL bench database (run after this checkout's scenarios:
    0007's functions stay, unused by the baseline code)."""
    _downgrade_to_0007(PG_URL)
    asyncio.run(_pg_as_0005())
    return PG_URL
