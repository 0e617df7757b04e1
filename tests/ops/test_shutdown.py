"""SIGTERM: requests in flight finish within the grace period, the process exits within a
bound, and a request cut off at the end of the grace period leaves nothing behind."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from pathlib import Path

import msgspec

from tests.conftest import TABLES
from tests.ops.conftest import ServeProcess, env_for, load_with_cli, serve
from tests.support import BASIC_FIXTURE, TOKENS, run_sql

GRACE = 3


def _patch_head(fr_id: int, body: bytes) -> bytes:
    return (f"PATCH /fulfillment-requests/{fr_id}/accounting-sync HTTP/1.1\r\nHost: x\r\n"
            f"X-API-TOKEN: {TOKENS['account1']}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()  # fmt: skip


async def _open(
    server: ServeProcess, data: bytes
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(data)
    await writer.drain()
    return reader, writer


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()


async def test_sigterm_lets_in_flight_requests_finish_and_cuts_off_the_rest(tmp_path: Path) -> None:
    load_with_cli(env_for(tmp_path), tmp_path, BASIC_FIXTURE)
    finishing = msgspec.json.encode({"externalAccountingId": "FINISHED"})
    cut_off = msgspec.json.encode({"externalAccountingId": "CUT-OFF"})
    timeouts = {"shutdown_grace_seconds": str(GRACE), "request_read_timeout": "60"}
    with serve(tmp_path, "--workers", "2", **timeouts) as server:
        # Both requests are in flight: head and half a body sent, the app reading the rest.
        slow = await _open(server, _patch_head(221, finishing) + finishing[:5])
        stuck = await _open(server, _patch_head(222, cut_off) + cut_off[:5])
        await asyncio.sleep(0.5)
        stopping = asyncio.create_task(asyncio.to_thread(server.stop))
        await asyncio.sleep(1.0)  # SIGTERM is in; the first client finishes within the grace
        slow[1].write(finishing[5:])
        answer = await asyncio.wait_for(slow[0].read(4096), GRACE)
        exit_seconds = await stopping
        left = await asyncio.wait_for(stuck[0].read(4096), 1)
        await _close(slow[1])
        await _close(stuck[1])
        server.check_log_is_clean(cut_off=1)
    print(f"exit {exit_seconds:.2f} s after SIGTERM (grace {GRACE} s)")  # shown by pytest -s
    assert answer.startswith(b"HTTP/1.1 204 "), answer
    assert left.startswith(b"HTTP/1.1 503 ") and b"shutting-down" in left, left
    assert exit_seconds < GRACE + 10, exit_seconds  # slack for process exit at load 8
    with contextlib.closing(sqlite3.connect(tmp_path / "frsync.db")) as db:
        rows = dict(db.execute("SELECT id, external_accounting_id"
                               " FROM fulfillment_request_accounting"
                               " WHERE id IN (221, 222)").fetchall())  # fmt: skip
        history = db.execute("SELECT count(*) FROM accounting_history").fetchone()[0]
    assert rows == {221: "FINISHED", 222: None}
    assert history == 1


async def test_a_postgres_transaction_cut_off_by_shutdown_rolls_back(
    tmp_path: Path, postgres_url: str
) -> None:
    """The PATCH waits on a row lock inside its transaction when the grace period ends; the
    cancelled transaction must leave neither the change nor its history entry."""
    import asyncpg

    await run_sql(postgres_url, f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE")
    env = env_for(tmp_path, database_url=postgres_url)
    await asyncio.to_thread(load_with_cli, env, tmp_path, BASIC_FIXTURE)
    body = msgspec.json.encode({"externalAccountingId": "CUT-OFF"})
    settings = {"database_url": postgres_url, "shutdown_grace_seconds": "1",
                "store_busy_timeout": "30"}  # fmt: skip
    blocker = await asyncpg.connect(postgres_url)
    try:
        with serve(tmp_path, **settings) as server:
            locker = blocker.transaction()
            await locker.start()
            await blocker.execute(  # the row a PATCH locks first: its accounting state
                "SELECT 1 FROM fulfillment_request_accounting WHERE id = 221 FOR UPDATE"
            )
            reader, writer = await _open(server, _patch_head(221, body) + body)
            await asyncio.sleep(0.5)  # the PATCH is now waiting for the row inside its BEGIN
            started = time.monotonic()
            await asyncio.to_thread(server.stop)
            exit_seconds = time.monotonic() - started
            await locker.rollback()
            answer = await asyncio.wait_for(reader.read(4096), 1)
            await _close(writer)
        value = await blocker.fetchval(
            "SELECT external_accounting_id FROM fulfillment_request_accounting WHERE id = 221"
        )
        history = await blocker.fetchval("SELECT count(*) FROM accounting_history")
    finally:
        await blocker.close()
    print(f"exit {exit_seconds:.2f} s after SIGTERM (grace 1 s)")  # shown by pytest -s
    assert exit_seconds < 1 + 10, exit_seconds  # slack for process exit at load 8
    assert answer.startswith(b"HTTP/1.1 503 "), answer
    assert value is None
    assert history == 0
