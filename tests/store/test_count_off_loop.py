"""Issue 21 item 5: the API's SQLite list and count queries never run on the event loop.

A count over 1M FRs costs tens of milliseconds; on the loop, every other request of that
worker would wait for it. They run on the store's read connections, in threads
(`SqliteStore.read_off_loop`), as the console's big reads do.
"""

from __future__ import annotations

import asyncio
import sqlite3
import statistics
import time
from pathlib import Path

import httpx
import pytest

from frsync.store import migrate
from tests.conftest import client_for
from tests.store.loop_watch import loop_blocks
from tests.support import BASIC_FIXTURE, TOKENS, load_fixture, make_settings, running_app

FRS = 1_000_000
# A million FRs of account 1 (ids above the fixture's), built by SQLite itself: the FRs, then
# their accounting state (store/schema.py).
_BULK = f"""
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {FRS})
INSERT INTO fulfillment_requests (id, fulfillment_request_number, account_id, source_id,
    order_id, channel_id, status, generated_at)
SELECT 1000000 + i, 'FR-' || i, 1, 10 + i % 2, i, 20, 'Processed', 0
FROM n
"""
_BULK_ACCOUNTING = """
INSERT INTO fulfillment_request_accounting (id, account_id, source_id, channel_id, status,
    updated_at, accounting_synced)
SELECT id, account_id, source_id, channel_id, status, 0,
       CASE (id - 1000000) % 4 WHEN 0 THEN NULL ELSE 1 END
FROM fulfillment_requests WHERE id > 1000000
"""


@pytest.mark.slow
async def test_healthz_keeps_answering_while_the_worker_counts_a_million_frs(
    tmp_path: Path,
) -> None:
    settings = make_settings(tmp_path)
    await asyncio.to_thread(migrate, settings.database_url)
    await load_fixture(settings, BASIC_FIXTURE)
    with sqlite3.connect(settings.database_url.removeprefix("sqlite:///")) as db:
        db.execute(_BULK)
        db.execute(_BULK_ACCOUNTING)
    async with (
        running_app(settings, fixture=None) as app,
        client_for(app, TOKENS["account1"]) as api,
        client_for(app) as probe,
    ):
        assert (await probe.get("/healthz")).status_code == 200  # warm
        waits: list[float] = []
        with loop_blocks(0.05) as blocks:
            task = asyncio.ensure_future(_counts(api))
            started = time.perf_counter()
            while not task.done():
                asked = time.perf_counter()
                assert (await probe.get("/healthz")).status_code == 200
                waits.append(time.perf_counter() - asked)
                await asyncio.sleep(0.002)
            counted = await task
            took = time.perf_counter() - started
    assert counted == [FRS + 8] * 3 + [FRS * 3 // 4 + 1]
    # Counts on the loop would let a probe in only between two counts (five at most here),
    # each after waiting out a whole count of a million entries. Off the loop the probes run
    # all along, and one that the OS stalled on a loaded machine (a 105 ms wait was seen at
    # load 8) moves neither their number nor their median: no bound here is a speed.
    assert len(waits) >= 10, (len(waits), took)
    assert statistics.median(waits) < 0.05, (statistics.median(waits), max(waits), took)
    assert len(blocks) <= 1, blocks  # callbacks (not this test's) that held the loop 50 ms


async def _counts(api: httpx.AsyncClient) -> list[int]:
    """One after another: three counts of the whole scope, one of "synced". Each with a
    `sinceId` below every id, which the kept counts do not answer: each reads the index."""
    found = []
    since = "?sinceId=1"
    for query in (since, since, since, f"{since}&filterAccountingSynced=true"):
        answer = await api.get(f"/fulfillment-requests/count{query}")
        found.append(answer.json()["count"])
    return found
