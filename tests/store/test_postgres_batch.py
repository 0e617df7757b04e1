"""PostgreSQL: PATCHes that wait while others are in flight go as one statement
(store/postgres_batch.py, migration 0007), each still its own all-or-nothing unit."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from frsync.errors import StoreBusy
from frsync.store.postgres import PostgresStore
from frsync.store.postgres_batch import Batcher
from frsync.tokens import hash_token
from tests.conftest import client_for
from tests.store.test_postgres import SYNC, clean_url, pg_settings
from tests.support import TOKENS, running_app

__all__ = ["clean_url"]  # the fixture, imported for this module's tests
pytestmark = pytest.mark.postgres


async def test_waiting_patches_go_together_in_batches_of_at_most_32() -> None:
    sent: list[list[int]] = []

    async def send(payload: bytes) -> list[Any]:
        batch = json.loads(payload)
        sent.append([patch["fr"] for patch in batch])
        await asyncio.sleep(0.01)  # in flight: the next ones wait meanwhile
        return [(patch["n"], "ok", patch["fr"]) for patch in batch]

    batcher = Batcher(send, senders=1, queue_timeout=30)
    rows = await asyncio.gather(*(batcher.run({"fr": n}) for n in range(40)))
    assert [row[-1] for row in rows] == list(range(40))  # each gets its own row back
    assert [len(batch) for batch in sent] == [32, 8]  # all 40 waited for the one sender


async def test_a_lock_timeout_fails_that_patch_alone_never_its_neighbours(
    tmp_path: Path, clean_url: str
) -> None:
    # pool_size 2: one sender, so the PATCHes sent meanwhile share batches with the blocked one.
    settings = pg_settings(tmp_path, clean_url, pool_size=2, store_busy_timeout=0.3)
    async with running_app(settings) as app, client_for(app, TOKENS["account1"]) as api:
        holder = await asyncpg.connect(clean_url, timeout=3)
        try:
            async with holder.transaction():
                await holder.execute(
                    "SELECT 1 FROM fulfillment_request_accounting WHERE id = 222 FOR UPDATE"
                )
                answers = await asyncio.gather(
                    *(api.patch(SYNC.format(fr), json=_body(fr)) for fr in (221, 222, 223) * 2)
                )
        finally:
            await holder.close()
        statuses = [answer.status_code for answer in answers]
        assert statuses == [204, 503, 204, 204, 503, 204], statuses
        for fr in (221, 223):
            got = (await api.get(f"/fulfillment-requests/{fr}")).json()
            assert got["externalAccountingId"] == f"m{fr}"
        assert (await api.get("/fulfillment-requests/222")).json()["externalAccountingId"] is None
        assert (await api.get(f"{SYNC.format(222)}/history")).json() == []


def _body(fr_id: int) -> dict[str, Any]:
    return {"accountingSynced": True, "externalAccountingId": f"m{fr_id}"}


async def test_a_cancelled_request_is_not_sent_and_a_batch_all_cancelled_is_cancelled() -> None:
    sent: list[list[int]] = []
    in_flight = asyncio.Event()
    cancelled: list[bool] = []

    async def send(payload: bytes) -> list[Any]:
        batch = json.loads(payload)
        sent.append([patch["fr"] for patch in batch])
        in_flight.set()
        try:
            await asyncio.sleep(10)  # a statement waiting for a row lock
        except asyncio.CancelledError:
            cancelled.append(True)  # asyncpg cancels the statement: rolled back
            raise
        return []

    batcher = Batcher(send, senders=1, queue_timeout=30)
    first = asyncio.ensure_future(batcher.run({"fr": 1}))
    await in_flight.wait()
    queued = asyncio.ensure_future(batcher.run({"fr": 2}))
    await asyncio.sleep(0)
    queued.cancel()  # waiting, not sent: it never will be
    first.cancel()  # its batch's only request: the statement is cancelled
    await asyncio.gather(first, queued, return_exceptions=True)
    await asyncio.sleep(0.01)
    assert sent == [[1]] and cancelled == [True]
    await batcher.close()


async def test_a_patch_never_sent_within_the_queue_timeout_is_busy_and_a_sent_one_waits_on() -> (
    None
):
    in_flight, release = asyncio.Event(), asyncio.Event()

    async def send(payload: bytes) -> list[Any]:
        in_flight.set()
        await release.wait()  # every sender busy: the pool is exhausted meanwhile
        return [(patch["n"], "ok", patch["fr"]) for patch in json.loads(payload)]

    batcher = Batcher(send, senders=1, queue_timeout=0.1)
    first = asyncio.ensure_future(batcher.run({"fr": 1}))
    await in_flight.wait()
    with pytest.raises(StoreBusy):
        await batcher.run({"fr": 2})  # waited its 0.1 s unsent
    assert not first.done()  # sent: past its queue timeout, it waits for its statement
    release.set()
    assert (await first)[-1] == 1
    await batcher.close()


async def test_token_lookups_waiting_together_go_as_one_statement_each_answered_alone(
    tmp_path: Path, clean_url: str
) -> None:
    """A cold token cache looks up every token in use at once: one statement for those that
    wait together, and each gets what a lookup alone gets (live, unknown, revoked)."""
    async with running_app(pg_settings(tmp_path, clean_url, pool_size=4)) as app:
        store: PostgresStore = app.state.store
        revoked = hash_token("tok-revoked-zzzzzzzzzzzz")
        await store.revoke_token(await store.create_token(revoked, "account", 1, None))
        statements: list[str] = []
        async with contextlib.AsyncExitStack() as stack:  # every pooled connection logs
            for _ in range(4):
                connection = await stack.enter_async_context(store.acquire())
                connection.add_query_logger(lambda record: statements.append(record.query))
        names = ["account1", "source10", "channel20", "account1"]
        asked = [hash_token(TOKENS[name]) for name in names] + [b"\x00" * 32, revoked]
        found = await asyncio.gather(*(store.find_token(digest) for digest in asked))
    assert [(p.token_type, p.scope_id) if p else None for p in found] == [
        ("account", 1), ("source", 10), ("channel", 20), ("account", 1), None, None
    ]  # fmt: skip
    assert len([sql for sql in statements if "api_tokens" in sql]) == 1
