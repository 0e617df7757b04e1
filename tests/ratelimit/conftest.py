"""Fixtures for the rate-limit tests: a hand-driven clock, Redis stores under a per-test key
prefix, and two misbehaving networks — a server that never answers, and a proxy to the real
Redis that can be switched off and on."""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis
import redis.asyncio
from tests.support import redis_problem, require_redis

from frsync.ratelimit import MemoryStore, RedisStore, SharedMemoryStore

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/15"


class FakeClock:
    """Monotonic seconds that move only when a test says so."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def _redis_url() -> str:
    return os.environ.get("FRSYNC_TEST_REDIS_URL", DEFAULT_REDIS_URL)


def require_redis_url() -> str:
    """The test Redis URL; skip the test if Redis is away, or fail it when services are required."""
    return require_redis(_redis_url())


class RedisStores:
    """Opens RedisStores whose keys all live under one random prefix, removed afterwards."""

    def __init__(self) -> None:
        # Under the production prefix, so a store opened with the default one fits too.
        self.namespace = f"test:{uuid.uuid4().hex}:"
        self.prefix = "frsync:rl:" + self.namespace
        self._stores: list[RedisStore] = []
        self._client: redis.asyncio.Redis | None = None

    def open(self, url: str | None = None, **options: Any) -> RedisStore:
        options.setdefault("prefix", self.prefix)
        store = RedisStore(url or require_redis_url(), **options)
        self._stores.append(store)
        return store

    @property
    def client(self) -> redis.asyncio.Redis:
        """A plain client on the test Redis, to look at what the stores wrote."""
        if self._client is None:
            self._client = redis.asyncio.Redis.from_url(require_redis_url())
        return self._client

    async def aclose(self) -> None:
        for store in self._stores:
            await store.close()
        if self._stores and redis_problem(_redis_url()) is None:
            keys = [key async for key in self.client.scan_iter(match=self.prefix + "*")]
            if keys:
                await self.client.delete(*keys)
        if self._client is not None:
            await self._client.aclose()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def redis_stores() -> AsyncIterator[RedisStores]:
    stores = RedisStores()
    yield stores
    await stores.aclose()


@pytest.fixture(params=["memory", "shm", pytest.param("redis", marks=pytest.mark.redis)])
async def store(
    request: pytest.FixtureRequest,
    clock: FakeClock,
    redis_stores: RedisStores,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> AsyncIterator[MemoryStore | SharedMemoryStore | RedisStore]:
    """Each backend, on the hand-driven clock (Redis is handed it in place of its TIME)."""
    if request.param == "memory":
        yield MemoryStore(clock=clock)
        return
    if request.param == "shm":
        shared = SharedMemoryStore(str(tmp_path / "buckets"), clock=clock)
        yield shared
        await shared.close()
        return
    yield redis_stores.open(timeout=2.0, clock=clock, server_time=clock)
    # A Redis test that quietly fell back to local buckets would prove nothing about Redis.
    fallbacks = [r for r in caplog.records if r.name == "frsync.ratelimit"]
    assert not fallbacks, [r.getMessage() for r in fallbacks]


class Blackhole:
    """A TCP server that accepts connections and never says a word, like a hung Redis."""

    def __init__(self) -> None:
        self._handlers: set[asyncio.Task[None]] = set()
        self._writers: list[asyncio.StreamWriter] = []

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._swallow, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        return f"redis://127.0.0.1:{port}/0"

    async def _swallow(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._handlers.add(asyncio.current_task())  # type: ignore[arg-type]
        self._writers.append(writer)
        try:
            while await reader.read(65536):
                pass
        finally:
            writer.close()

    async def aclose(self) -> None:
        self._server.close()
        for writer in self._writers:
            writer.close()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._server.wait_closed()


@pytest.fixture
async def blackhole_url() -> AsyncIterator[str]:
    server = Blackhole()
    yield await server.start()
    await server.aclose()


class RedisProxy:
    """A TCP proxy to the test Redis; switched off, it drops every connection it carries
    and hangs up on new ones, as a restarting Redis would."""

    def __init__(self, target_url: str) -> None:
        self._target = urlsplit(target_url)
        self.on = True
        self._handlers: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        userinfo = self._target.netloc.rpartition("@")[0]
        netloc = f"{userinfo}@127.0.0.1:{port}" if userinfo else f"127.0.0.1:{port}"
        return self._target._replace(netloc=netloc).geturl()

    def switch_off(self) -> None:
        self.on = False
        for writer in self._writers:
            writer.transport.abort()

    def switch_on(self) -> None:
        self.on = True

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._handlers.add(asyncio.current_task())  # type: ignore[arg-type]
        if not self.on:
            writer.transport.abort()
            return
        host, port = self._target.hostname or "127.0.0.1", self._target.port or 6379
        up_reader, up_writer = await asyncio.open_connection(host, port)
        self._writers |= {writer, up_writer}
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        self._writers -= {writer, up_writer}

    async def aclose(self) -> None:
        self._server.close()
        self.switch_off()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._server.wait_closed()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()


@pytest.fixture
async def redis_proxy() -> AsyncIterator[tuple[RedisProxy, str]]:
    target = require_redis_url()
    if urlsplit(target).scheme != "redis":
        pytest.skip("the switchable proxy speaks plain TCP; FRSYNC_TEST_REDIS_URL is not redis://")
    proxy = RedisProxy(target)
    url = await proxy.start()
    yield proxy, url
    await proxy.aclose()


@pytest.fixture
def ratelimit_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="frsync.ratelimit")
    return caplog
