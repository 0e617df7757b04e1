"""What every test needs: a known data set, its tokens, and the app running on a store."""

from __future__ import annotations

import asyncio
import copy
import functools
import os
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import hypothesis
import msgspec
import pytest
import redis
import uvicorn
from starlette.applications import Starlette

from frsync.app import create_app
from frsync.backends import open_store
from frsync.config import Settings
from frsync.fixture import Fixture, fixture_to_rows
from frsync.models import now_ms
from frsync.server_protocol import protocol_for

TOKENS = {
    "account1": "tok-account-1-aaaaaaaaaaaa",
    "account2": "tok-account-2-bbbbbbbbbbbb",
    "source10": "tok-source-10-cccccccccccc",
    "source11": "tok-source-11-dddddddddddd",
    "channel20": "tok-channel-20-eeeeeeeeeee",
    "channel40": "tok-channel-40-fffffffffff",
}

# The platform team's token: the console and the sandbox admin API, never the FR endpoints.
OPERATOR_TOKEN = "tok-operator-000-ggggggggggg"


def _fr(
    fr_id: int, account: int, source: int, channel: int | None, items: list[int], **extra: Any
) -> dict[str, Any]:
    return {
        "id": fr_id,
        "accountId": account,
        "sourceId": source,
        "channelId": channel,
        "orderId": 5000 + fr_id,
        "fulfillmentRequestNumber": f"FR-{fr_id}",
        "status": extra.pop("status", "Processed"),
        "generatedAt": "2026-11-20T10:00:00.000Z",
        "items": [
            {
                "id": i,
                "sku": f"SKU-{i}",
                "title": f"Item {i}",
                "quantity": 1 + i % 3,
                "cost": 10.5,
                "orderItemId": 90000 + i,
            }
            for i in items
        ],
        **extra,
    }


BASIC_FIXTURE: dict[str, Any] = {
    "accounts": [{"id": 1, "name": "Acme Outdoor"}, {"id": 2, "name": "Birch & Pine"}],
    "sources": [
        {"id": 10, "accountId": 1, "name": "Trailhead Supply"},
        {"id": 11, "accountId": 1, "name": "Summit Wholesale"},
        {"id": 30, "accountId": 2, "name": "Hearth Goods"},
    ],
    "channels": [
        {"id": 20, "accountId": 1, "name": "Acme Shopify"},
        {"id": 21, "accountId": 1, "name": "Acme Amazon"},
        {"id": 40, "accountId": 2, "name": "Birch Etsy"},
    ],
    "fulfillmentRequests": [
        _fr(221, 1, 10, 20, [12312, 12313]),
        _fr(222, 1, 11, 20, [12320]),
        _fr(223, 1, 10, None, [12330, 12331, 12332]),
        _fr(224, 1, 11, 21, [12340], status="Acknowledged"),
        _fr(
            225,
            1,
            10,
            21,
            [12350],
            accountingSynced=True,
            externalAccountingId="PO-225",
            accountingSyncedAt="2026-11-21T09:00:00.000Z",
        ),
        _fr(226, 1, 10, 20, [12360], accountingSynced=False, accountingError="Vendor not mapped"),
        _fr(227, 1, 11, 20, [12370], accountingSynced=False, accountingError=""),
        _fr(228, 1, 10, 20, [], status="Canceled"),
        _fr(301, 2, 30, 40, [30101]),
        _fr(302, 2, 30, None, [30201, 30202]),
    ],
    "tokens": [
        {"token": TOKENS["account1"], "type": "account", "id": 1},
        {"token": TOKENS["account2"], "type": "account", "id": 2},
        {"token": TOKENS["source10"], "type": "source", "id": 10},
        {"token": TOKENS["source11"], "type": "source", "id": 11},
        {"token": TOKENS["channel20"], "type": "channel", "id": 20},
        {"token": TOKENS["channel40"], "type": "channel", "id": 40},
        {"token": OPERATOR_TOKEN, "type": "operator", "label": "platform team"},
    ],
}


class ManualClock:
    """Monotonic seconds that move only when a test moves them (`clock.now += 1`): what
    create_app's rate limits and token cache see, whatever the machine's speed."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def examples(count: int) -> int:
    """How many examples a generated test that takes `count` in `make test` runs now: ten
    times as many under `make fuzz` (its Hypothesis profile's max_examples, per 100)."""
    return max(1, count * hypothesis.settings.default.max_examples // 100)


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """SQLite under tmp_path, memory rate limits, no access log."""
    values: dict[str, Any] = {
        "database_url": f"sqlite:///{tmp_path / 'frsync.db'}",
        "log_requests": False,
    }
    values.update(overrides)
    return Settings(**values)


def fixture_copy() -> dict[str, Any]:
    return copy.deepcopy(BASIC_FIXTURE)


async def load_fixture(settings: Settings, fixture: dict[str, Any]) -> None:
    data = fixture_to_rows(msgspec.convert(fixture, type=Fixture), now=now_ms())
    store = await open_store(settings)
    try:
        await store.load([data])
    finally:
        await store.close()


@asynccontextmanager
async def running_app(
    settings: Settings,
    fixture: dict[str, Any] | None = BASIC_FIXTURE,
    clock: Callable[[], float] = time.monotonic,
) -> AsyncIterator[Starlette]:
    """The app with its lifespan started, on a migrated store holding `fixture`."""
    if fixture is not None:
        await load_fixture(settings, fixture)
    app = create_app(settings, clock=clock)
    async with app.router.lifespan_context(app):
        yield app


async def run_sql(url: str, *statements: str) -> None:
    """Run statements on PostgreSQL at `url` (setup and teardown of test databases)."""
    import asyncpg

    connection = await asyncpg.connect(url, timeout=5)
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


_EMPTYING: dict[str, str] = {}  # database URL → the statements that empty it


async def reset_postgres(url: str) -> None:
    """Every table of the migrated database at `url` emptied and its sequences restarted, as
    `TRUNCATE … RESTART IDENTITY` does, in one round trip; several times faster on tables
    this small (TRUNCATE replaces each table's files)."""
    import asyncpg

    connection = await asyncpg.connect(url, timeout=5)
    try:
        if url not in _EMPTYING:
            _EMPTYING[url] = await _emptying_statements(connection)
        await connection.execute(_EMPTYING[url])
    finally:
        await connection.close()


async def _emptying_statements(connection: Any) -> str:
    """DELETE from each table before the tables it references, then restart the sequences."""
    tables = {
        row["name"]: set()
        for row in await connection.fetch(
            "SELECT quote_ident(tablename) AS name FROM pg_tables"
            " WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
        )
    }
    for row in await connection.fetch(
        "SELECT quote_ident(c.relname) AS referencing, quote_ident(p.relname) AS referenced"
        " FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid"
        " JOIN pg_class p ON p.oid = k.confrelid WHERE k.contype = 'f'"
    ):
        if row["referencing"] in tables and row["referencing"] != row["referenced"]:
            tables[row["referenced"]].add(row["referencing"])  # those go first
    ordered: list[str] = []
    while tables:
        ready = sorted(t for t, before in tables.items() if not before - set(ordered))
        assert ready, f"a circle of foreign keys among {sorted(tables)}"
        ordered += ready
        for name in ready:
            del tables[name]
    # The kept counts last: deleting the FRs takes them to zero through the FRs' triggers
    # (migration 0009); emptied before the FRs, they would go below zero.
    ordered.sort(key=lambda name: name == "fulfillment_request_counts")
    sequences = await connection.fetch(
        "SELECT quote_ident(sequence_name) AS name FROM information_schema.sequences"
        " WHERE sequence_schema = 'public'"
    )
    statements = [f"DELETE FROM {name}" for name in ordered]
    statements += [f"ALTER SEQUENCE {row['name']} RESTART" for row in sequences]
    return "BEGIN; " + "; ".join(statements) + "; COMMIT"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def serve_over_tcp(
    settings: Settings, fixture: dict[str, Any] | None = BASIC_FIXTURE
) -> Iterator[str]:
    """A real uvicorn server in a background thread on a free loopback port."""
    if fixture is not None:
        asyncio.run(load_fixture(settings, fixture))
    with uvicorn_thread(settings) as port:
        yield f"http://127.0.0.1:{port}"


@contextmanager
def uvicorn_thread(settings: Settings, **config_options: Any) -> Iterator[int]:
    """frsync's app under uvicorn with the guarded protocol, in a background thread (its own
    event loop); yields the loopback port. The store must already be migrated.

    The socket is bound here and handed to uvicorn, so no other process can take the port
    between choosing and binding it (a `free_port()` that uvicorn bound later was seen taken
    by another test's connection: "address already in use")."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    config = uvicorn.Config(
        create_app(settings),
        host="127.0.0.1",
        port=port,
        log_config=None,
        access_log=False,
        lifespan="on",
        http=protocol_for(settings),
        **config_options,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    try:
        for _ in range(500):
            if server.started:
                break
            thread.join(0.01)
        assert server.started, "uvicorn did not start"
        yield port
    finally:
        server.should_exit = True
        thread.join(10)
        listener.close()


def holds_within(condition: Callable[[], object], timeout: float) -> bool:
    """Poll `condition` until it holds (True) or `timeout` s have passed (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def wait_for(condition: Callable[[], object], what: str, timeout: float) -> None:
    """Poll `condition` until it holds; AssertionError naming `what` after `timeout` s."""
    if not holds_within(condition, timeout):
        raise AssertionError(f"not within {timeout:g} s: {what}")


async def until(condition: Callable[[], object], what: str, seconds: float) -> None:
    """`wait_for` for a test on the event loop: polls without blocking the loop."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {seconds:g} s: {what}")
        await asyncio.sleep(0.05)


def wait_ready(base: str, timeout: float = 30) -> None:
    """Wait until the server at `base` answers `/readyz` with 200."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"frsync serve at {base} did not become ready")


@functools.cache
def redis_problem(url: str) -> str | None:
    """Why the Redis at `url` did not answer a PING (None when it did); asked once per URL."""
    client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    try:
        client.ping()
    except (redis.RedisError, OSError) as error:
        where = urlsplit(url)._replace(netloc=urlsplit(url).netloc.rpartition("@")[2]).geturl()
        return f"Redis not reachable at {where!r}: {error}"
    finally:
        client.close()
    return None


def require_redis(url: str) -> str:
    """`url` once its Redis answers; else skip the test, or fail it when the services are
    required (FRSYNC_REQUIRE_SERVICES=1, as in CI)."""
    problem = redis_problem(url)
    if problem is not None:
        if os.environ.get("FRSYNC_REQUIRE_SERVICES") == "1":
            pytest.fail(problem + " (FRSYNC_REQUIRE_SERVICES=1)", pytrace=False)
        pytest.skip(problem)
    return url
