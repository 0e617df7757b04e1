"""A worker whose SQLite write process cannot be reached writes its PATCHes itself, and says
so once; a worker's other statements go to the write process too (the process itself is
tested under `frsync serve`: tests/faults/test_write_process.py)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from frsync.cli.server import write_process_writer
from frsync.errors import StoreBusy
from frsync.store.sqlite import SqliteStore
from frsync.store.sqlite_write_process import MAX_MESSAGE, _answer, _Frames, _raise, serve
from frsync.store.sqlite_writer import Writer
from tests.conftest import client_for
from tests.support import TOKENS, make_settings, running_app, until

SYNC = "/fulfillment-requests/221/accounting-sync"


async def test_an_unreachable_write_process_leaves_the_worker_writing_itself(
    tmp_path: Path, sqlite_template: Path, caplog: pytest.LogCaptureFixture
) -> None:
    shutil.copyfile(sqlite_template, tmp_path / "frsync.db")
    settings = make_settings(
        tmp_path,
        database_url=f"sqlite:///{tmp_path / 'frsync.db'}",
        sqlite_write_socket=str(tmp_path / "nobody-listens.sock"),
    )
    async with running_app(settings) as app, client_for(app, TOKENS["account1"]) as api:
        for n in range(3):
            answer = await api.patch(SYNC, json={"externalAccountingId": f"local-{n}"})
            assert answer.status_code == 204, answer.text
        fr = (await api.get("/fulfillment-requests/221")).json()
        missing = await api.patch("/fulfillment-requests/999999/accounting-sync", json={})
    assert fr["externalAccountingId"] == "local-2"
    assert missing.status_code == 404
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "write" in r.message]
    assert len(warnings) == 1, warnings  # once, not per request


def test_frames_come_out_whole_whatever_the_chunks_and_refuse_a_giant() -> None:
    frames = _Frames()
    stream = b"".join(len(body).to_bytes(4, "big") + body for body in (b"one", b"", b"three"))
    found = [message for n in range(len(stream)) for message in frames.feed(stream[n : n + 1])]
    assert found == [b"one", b"", b"three"]
    with pytest.raises(ValueError, match="a message of"):
        list(frames.feed((MAX_MESSAGE + 1).to_bytes(4, "big")))


async def test_a_write_process_that_never_answers_costs_a_503_not_a_hang(
    tmp_path: Path, sqlite_template: Path
) -> None:
    """A peer that takes the PATCH and says nothing (hung): the request answers 503 once the
    busy timeout and the margin have passed, and the worker goes on serving."""
    shutil.copyfile(sqlite_template, tmp_path / "frsync.db")
    socket_path = str(tmp_path / "silent.sock")
    received: list[bytes] = []

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            received.append(await reader.read(1 << 16))
            await reader.read()  # until the worker goes; never a word back
        finally:
            writer.close()

    silent = await asyncio.start_unix_server(swallow, path=socket_path)
    settings = make_settings(
        tmp_path,
        database_url=f"sqlite:///{tmp_path / 'frsync.db'}",
        sqlite_write_socket=socket_path,
        store_busy_timeout=0.1,
    )
    async with silent, running_app(settings) as app, client_for(app, TOKENS["account1"]) as api:
        answer = await api.patch(SYNC, json={"externalAccountingId": "into-the-void"})
        assert answer.status_code == 503, answer.text
        assert answer.headers["retry-after"]
        assert (await api.get("/fulfillment-requests/221")).status_code == 200
    assert received and received[0]  # the PATCH was sent


INSERT = "INSERT INTO t (k, v) VALUES (?, ?)"


async def table_t(store: SqliteStore) -> None:
    await store.transaction(lambda db: db.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v)"))


async def rows_of_t(store: SqliteStore) -> list[tuple[int, object]]:
    return await store.read(lambda db: db.execute("SELECT k, v FROM t ORDER BY k").fetchall())


@asynccontextmanager
async def write_process(database: Path, socket_path: str) -> AsyncIterator[Writer]:
    """The write process's work (`serve`) on this loop, on `database`; its writer yielded."""
    writer = write_process_writer(str(database), "NORMAL", 2.0)
    serving = asyncio.ensure_future(serve(writer, socket_path))
    await until(lambda: os.path.exists(socket_path), "the write process listens", 30)
    try:
        yield writer
    finally:
        serving.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await serving


async def test_a_workers_statements_are_written_by_the_write_process(
    tmp_path: Path, sqlite_template: Path
) -> None:
    """`write_statements` (the console's usage counts) goes to the write process, all of its
    statements in one transaction: applied together, or, when one fails, none of them."""
    database = tmp_path / "frsync.db"
    shutil.copyfile(sqlite_template, database)
    socket_path = str(tmp_path / "w.sock")
    store = SqliteStore(str(database), write_socket=socket_path)
    try:
        await table_t(store)
        async with write_process(database, socket_path) as writer:
            await store.write_statements([(INSERT, (1, "one")), (INSERT, (2, 2.5))])
            assert writer.jobs == 1
            with pytest.raises(RuntimeError, match="write process failed"):
                await store.write_statements([(INSERT, (3, None)), (INSERT, (1, "again"))])
        rows = await rows_of_t(store)
    finally:
        await store.close()
    assert rows == [(1, "one"), (2, 2.5)]  # 3 rolled back with the duplicate


async def test_without_a_write_process_a_worker_writes_its_statements_itself(
    tmp_path: Path, sqlite_template: Path
) -> None:
    database = tmp_path / "frsync.db"
    shutil.copyfile(sqlite_template, database)
    store = SqliteStore(str(database), write_socket=str(tmp_path / "nobody-listens.sock"))
    try:
        await table_t(store)
        await store.write_statements([(INSERT, (1, "one"))])
        with pytest.raises(sqlite3.IntegrityError):
            await store.write_statements([(INSERT, (2, "two")), (INSERT, (1, "again"))])
        rows = await rows_of_t(store)
    finally:
        await store.close()
    assert rows == [(1, "one")]


def test_a_transient_sqlite_error_in_the_write_process_answers_store_busy() -> None:
    """A full disk, a lock or an I/O error where the write ran is a 503 (StoreBusy) in the
    worker, as its own store answers it, not a failure (a 500)."""
    full = sqlite3.OperationalError("database or disk is full")
    full.sqlite_errorcode = 13  # SQLITE_FULL
    with pytest.raises(StoreBusy):
        _raise(_answer(7, full))
    with pytest.raises(RuntimeError, match="write process failed"):
        _raise(_answer(8, sqlite3.IntegrityError("UNIQUE constraint failed: t.k")))
