"""PostgreSQL-only behaviour: row locks under concurrency, a bounded pool, dead connections,
lock waits. The shared suite covers everything else on both backends."""

from __future__ import annotations

import asyncio
import itertools
import socket
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest
from starlette.applications import Starlette

from frsync.backends import open_store
from frsync.config import Settings
from frsync.errors import InvalidRequest, NotFound, StoreBusy
from frsync.store import LoadData
from frsync.store.postgres import PostgresStore
from tests.conftest import TABLES, client_for
from tests.faults.harness import via_proxy
from tests.faults.proxy import PROXY_LEAK, FaultProxy
from tests.support import TOKENS, fixture_copy, load_fixture, make_settings, running_app

pytestmark = pytest.mark.postgres

SYNC = "/fulfillment-requests/{}/accounting-sync"
MARGIN = 2.0  # seconds of slack on top of a configured timeout, for a machine at load 8
# Only this database's: other tests (pytest-xdist workers, other runs) share the server.
KILL_POOL = (
    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
    " WHERE application_name = 'frsync' AND datname = current_database()"
)


@pytest.fixture
def clean_url(postgres_url: str) -> str:
    """The session's database, emptied for this test."""
    asyncio.run(_execute(postgres_url, f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE"))
    return postgres_url


async def _execute(url: str, sql: str) -> Any:
    """Run `sql` on a connection of its own; its first value."""
    connection = await asyncpg.connect(url, timeout=3)
    try:
        return await connection.fetchval(sql)
    finally:
        await connection.close()


def pg_settings(tmp_path: Path, url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"burst": 1000, "token_cache_seconds": 60.0}
    values.update(overrides)
    return make_settings(tmp_path, database_url=url, **values)


@pytest.fixture
async def client(tmp_path: Path, clean_url: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = pg_settings(tmp_path, clean_url)
    async with running_app(settings) as app, client_for(app, TOKENS["account1"]) as api:
        yield api


def marked(marker: str) -> dict[str, Any]:
    return {
        "accountingSynced": True,
        "externalAccountingId": marker,
        "accountingError": marker,
        "items": [
            {"id": 12312, "externalAccountingItemId": marker},
            {"id": 12313, "externalAccountingItemId": marker},
        ],
    }


def markers_of(fr: dict[str, Any]) -> set[str]:
    values = [fr["externalAccountingId"], fr["accountingError"]]
    return set(values + [i["externalAccountingItemId"] for i in fr["fulfillmentRequestItems"]])


def store_of(app: Starlette) -> PostgresStore:
    store = app.state.store
    assert isinstance(store, PostgresStore)
    return store


async def test_fifty_concurrent_patches_leave_one_writers_version_and_fifty_entries(
    client: httpx.AsyncClient,
) -> None:
    answers = await asyncio.gather(*(client.patch(SYNC.format(221), json=marked(f"m{n}"))
                                     for n in range(50)))  # fmt: skip
    assert [a.status_code for a in answers] == [204] * 50
    fr = (await client.get("/fulfillment-requests/221")).json()
    (winner,) = markers_of(fr)
    history = (await client.get(f"{SYNC.format(221)}/history?limit=100")).json()
    assert len(history) == 50
    assert history[0]["changes"]["externalAccountingId"]["after"] == winner
    # Serialized writers: each entry's "before" is the previous entry's "after".
    oldest_first = [e["changes"]["externalAccountingId"] for e in reversed(history)]
    assert all(b["before"] == a["after"] for a, b in itertools.pairwise(oldest_first))


async def test_exhausted_pool_answers_503_with_retry_after_within_the_acquire_timeout(
    tmp_path: Path, clean_url: str
) -> None:
    settings = pg_settings(tmp_path, clean_url, pool_size=1, pool_acquire_timeout=0.3)
    async with running_app(settings) as app, client_for(app, TOKENS["account1"]) as api:
        assert (await api.get("/fulfillment-requests/221")).status_code == 200  # token cached
        async with store_of(app).acquire():  # the pool's only connection
            started = time.monotonic()
            answer = await api.patch(SYNC.format(221), json=marked("held"))
            elapsed = time.monotonic() - started
        assert answer.status_code == 503 and answer.headers["Retry-After"] == "1"
        assert 0.3 <= elapsed < 0.3 + MARGIN
        assert (await api.patch(SYNC.format(221), json=marked("free"))).status_code == 204


async def test_terminated_connections_are_replaced_and_never_answer_500(
    tmp_path: Path, clean_url: str
) -> None:
    settings = pg_settings(tmp_path, clean_url, pool_size=4)
    async with running_app(settings) as app, client_for(app, TOKENS["account1"]) as api:
        statuses: list[int] = []
        pool_reported: list[bool] = []  # per 503: did it carry the token's pool headers?
        killed = asyncio.Event()
        assert (await api.get("/fulfillment-requests/221")).status_code == 200  # token known

        async def writer(n: int) -> None:
            round_ = 0
            while not killed.is_set():
                answer = await api.patch(SYNC.format(221), json=marked(f"w{n}-{round_}"))
                statuses.append(answer.status_code)
                if answer.status_code == 503:
                    pool_reported.append("x-auth-pool-size" in answer.headers)
                round_ += 1

        async def killer() -> int:
            victims = 0
            for _ in range(3):
                await asyncio.sleep(0.1)
                victims += await _execute(clean_url, KILL_POOL)
            killed.set()
            return victims

        victims, *_ = await asyncio.gather(killer(), *(writer(n) for n in range(4)))
        assert victims >= 3  # the pool's connections, every round
        assert set(statuses) <= {204, 503} and 204 in statuses, statuses
        assert all(pool_reported), pool_reported  # a known token's 503 is authenticated
        await asyncio.sleep(0.05)  # the last kill's sockets close
        answers = [await api.patch(SYNC.format(221), json=marked(f"after{n}")) for n in range(3)]
        assert [a.status_code for a in answers] == [204, 204, 204]
        fr = (await api.get("/fulfillment-requests/221")).json()
        assert markers_of(fr) == {"after2"}


async def test_row_lock_held_elsewhere_answers_503_within_the_lock_timeout(
    tmp_path: Path, clean_url: str
) -> None:
    settings = pg_settings(tmp_path, clean_url, store_busy_timeout=0.3)
    async with running_app(settings) as app, client_for(app, TOKENS["account1"]) as api:
        holder = await asyncpg.connect(clean_url, timeout=3)
        try:
            async with holder.transaction():
                await holder.execute(
                    "SELECT 1 FROM fulfillment_request_accounting WHERE id = 221 FOR UPDATE"
                )
                started = time.monotonic()
                answer = await api.patch(SYNC.format(221), json=marked("blocked"))
                elapsed = time.monotonic() - started
                other = await api.patch(SYNC.format(222), json={"accountingSynced": True})
        finally:
            await holder.close()
        assert answer.status_code == 503 and answer.headers["Retry-After"] == "1"
        assert 0.3 <= elapsed < 0.3 + MARGIN
        assert other.status_code == 204  # only that FR was locked
        assert (await api.patch(SYNC.format(221), json=marked("free"))).status_code == 204
        fr = (await api.get("/fulfillment-requests/221")).json()
        assert markers_of(fr) == {"free"}


async def test_a_lock_timeout_changes_nothing(tmp_path: Path, clean_url: str) -> None:
    settings = pg_settings(tmp_path, clean_url, store_busy_timeout=0.2)
    async with running_app(settings) as app, client_for(app, TOKENS["account1"]) as api:
        holder = await asyncpg.connect(clean_url, timeout=3)
        try:
            async with holder.transaction():  # an item locked, not the FR: the 2nd lock waits
                await holder.execute(
                    "SELECT 1 FROM fulfillment_request_items WHERE id = 12313 FOR UPDATE"
                )
                answer = await api.patch(SYNC.format(221), json=marked("blocked"))
        finally:
            await holder.close()
        assert answer.status_code == 503
        fr = (await api.get("/fulfillment-requests/221")).json()
        assert "blocked" not in markers_of(fr)
        assert (await api.get(f"{SYNC.format(221)}/history")).json() == []


async def test_opening_an_unreachable_server_fails_fast_with_store_busy(tmp_path: Path) -> None:
    closed_port = "postgresql://postgres@127.0.0.1:9/none"  # discard port: refused
    started = time.monotonic()
    with pytest.raises(StoreBusy):
        await open_store(make_settings(tmp_path, database_url=closed_port))
    assert time.monotonic() - started < 2.0 + MARGIN


@pytest.mark.filterwarnings(PROXY_LEAK)
async def test_a_worker_started_during_an_outage_answers_503_then_serves_when_it_ends(
    tmp_path: Path, clean_url: str
) -> None:
    """A worker (re)started while the database is down must serve, not fail its start:
    uvicorn stops the whole server when one worker's start fails."""
    await load_fixture(pg_settings(tmp_path, clean_url), fixture_copy())
    target = urlsplit(clean_url)
    proxy = FaultProxy(target.hostname or "127.0.0.1", target.port or 5432).start()
    try:
        proxy.set_mode("refuse")
        settings = pg_settings(tmp_path, via_proxy(clean_url, proxy.port))
        async with (
            running_app(settings, fixture=None) as app,
            client_for(app, TOKENS["account1"]) as api,
        ):
            assert (await api.get("/readyz")).status_code == 503
            down = await api.patch(SYNC.format(221), json={"externalAccountingId": "x"})
            assert down.status_code == 503 and down.headers["retry-after"], down.text
            proxy.set_mode("pass")
            assert (await api.get("/readyz")).status_code == 200
            up = await api.patch(SYNC.format(221), json={"externalAccountingId": "x"})
            assert up.status_code == 204, up.text
            fr = (await api.get("/fulfillment-requests/221")).json()
            assert fr["externalAccountingId"] == "x"
    finally:
        proxy.close()


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A port that accepts connections and never says a word: a hung or stopped server."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield f"postgresql://postgres@127.0.0.1:{listener.getsockname()[1]}/none"


async def test_opening_a_silent_server_gives_up_within_the_acquire_timeout(
    tmp_path: Path, silent_server: str
) -> None:
    settings = make_settings(tmp_path, database_url=silent_server, pool_acquire_timeout=0.3)
    started = time.monotonic()
    with pytest.raises(StoreBusy):
        await open_store(settings)
    assert 0.3 <= time.monotonic() - started < 0.3 + MARGIN


async def test_nul_and_out_of_range_values_are_refused_cleanly_by_the_store(
    tmp_path: Path, clean_url: str
) -> None:
    """The API refuses these before the store; the store must not turn them into a 500."""
    async with running_app(pg_settings(tmp_path, clean_url)) as app:
        store = store_of(app)
        with pytest.raises(InvalidRequest):
            await store.revoke_token(2**63)
        with pytest.raises(InvalidRequest):
            await store.create_token(b"x" * 32, "account", 1, "nul \x00 label")


async def test_a_load_with_text_postgresql_refuses_loads_nothing(
    tmp_path: Path, clean_url: str
) -> None:
    store = await open_store(pg_settings(tmp_path, clean_url))
    try:
        with pytest.raises(InvalidRequest, match="nothing was loaded"):
            await store.load([LoadData(accounts=[(8, "fine"), (9, "nul \x00 inside")])])
        with pytest.raises(NotFound):  # account 8 went with the rest
            await store.create_token(b"\x05" * 32, "account", 8, None)
    finally:
        await store.close()
