"""Token buckets shared through Redis, falling back to in-process buckets when Redis is away.

Each hit is the GCRA step of `memory.step` in a Lua script, so buckets are updated atomically
for every process and host, on Redis's own clock. Hits that come while a script call is in
flight share the next call, one round trip for all of them (`_sent`).

Redis being unreachable, refusing, slow or silent never holds a request longer than
`timeout`: the hit is answered from a local bucket, the outage is logged once, `status()`
says 'degraded', and Redis is tried again after a short backoff — by one request at a time,
so a dead Redis is not hammered.

One transition is logged per change of state. After a Redis restart every pooled connection
is stale and fails once, while calls on fresh connections succeed; without care the state
flapped (10 "unreachable"/"reachable again" pairs in 0.7 s). So:
- a call that fails at once on a broken connection (reset, closed: not a timeout) drops the
  idle pooled connections, likely stale too, and tries once more on a fresh one, within the
  same `timeout`: a connection reset while Redis is up costs nothing and logs nothing;
- a call's outcome may change the state only if the call began in the current state
  (`_epoch`): a success that began before the outage was noticed does not end it, a failure
  that began before the recovery does not restart it.

A restarted Redis (without persistence) has lost every bucket: each token starts full again,
an extra burst once per restart (docs/deploy.md).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Any, TypeVar

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from frsync.ratelimit.base import Decision
from frsync.ratelimit.memory import Clock, MemoryStore, check_limits, decide

log = logging.getLogger("frsync.ratelimit")

T = TypeVar("T")

# KEYS[i]: a bucket; ARGV[3i-2], ARGV[3i-1], ARGV[3i]: its capacity, its rate, and a time in
# seconds that only tests pass ('' otherwise). Returns [allowed, seconds] per bucket, in order.
# Times are seconds since 2023-11-14 (1.7e9), not 1970: the smaller number keeps sub-microsecond
# precision in a double. The TAT is written with %.17g because Lua's tostring keeps 14 digits.
GCRA_SCRIPT = """
local clock
local out = {}
for i, key in ipairs(KEYS) do
  local capacity = tonumber(ARGV[3 * i - 2])
  local rate = tonumber(ARGV[3 * i - 1])
  local now = tonumber(ARGV[3 * i])
  if not now then
    if not clock then
      local t = redis.call('TIME')
      clock = (tonumber(t[1]) - 1700000000) + tonumber(t[2]) / 1000000
    end
    now = clock
  end
  local base = math.max(tonumber(redis.call('GET', key)) or now, now)
  local tat = base + 1 / rate
  if tat - now > capacity / rate + 1e-6 then
    out[#out + 1] = 0
    out[#out + 1] = string.format('%.17g', base - now)
  else
    local ttl = math.ceil((tat - now) * 1000)
    redis.call('SET', key, string.format('%.17g', tat), 'PX', ttl)
    out[#out + 1] = 1
    out[#out + 1] = string.format('%.17g', tat - now)
  end
end
return out
"""
# The most hits one script call takes; more wait for the next call.
MAX_BATCH = 64

# A reset walks every key under the prefix: more than one hit's worth of time.
_RESET_TIMEOUT = 5.0
# What a broken, slow or vanished Redis raises (asyncio's TimeoutError is an OSError too).
FAILURES = (RedisError, OSError, TimeoutError)
# A connection that is already broken fails at once with one of these (a timeout is not one:
# a second try could not finish within the same budget).
BROKEN = (RedisConnectionError, ConnectionError)


class RedisStore:
    """Buckets in Redis under `frsync:rl:{key}`, with local buckets as the fallback."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 0.25,
        clock: Clock = time.monotonic,
        backoff: float = 1.0,
        prefix: str = "frsync:rl:",
        max_connections: int = 32,
        server_time: Clock | None = None,
    ) -> None:
        # No retries inside redis-py: a retry would double the time a request can wait, and
        # the local bucket is a better answer than a late one.
        pool = BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=timeout,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
        )
        self._pool = pool
        self._redis: Redis = Redis.from_pool(pool)
        self._script = self._redis.register_script(GCRA_SCRIPT)
        self._waiting: list[tuple[str, list[str], asyncio.Future[list[Any]]]] = []
        self._sender: asyncio.Task[None] | None = None
        self._fallback = MemoryStore(clock=clock)
        self._timeout = timeout
        self._clock = clock
        self._backoff = backoff
        self._prefix = prefix
        self._server_time = server_time  # tests only: replaces Redis's TIME
        self._down = False
        self._retry_at = 0.0  # while down, Redis is left alone until this clock time
        self._probing = False
        self._epoch = 0  # bumped at each up/down transition

    @classmethod
    def from_url(
        cls, url: str, *, timeout: float = 0.25, clock: Clock = time.monotonic
    ) -> RedisStore:
        """Build from `redis://`, `rediss://` or `unix://`; connects lazily, on first use."""
        return cls(url, timeout=timeout, clock=clock)

    async def hit(self, key: str, capacity: int, rate: float) -> Decision:
        """Take one token from `key`'s bucket if there is one; a refused hit costs nothing."""
        check_limits(capacity, rate)
        decision = await self._guarded(lambda: self._remote_hit(key, capacity, rate))
        if decision is None:
            return self._fallback.hit_now(key, capacity, rate)
        return decision

    async def reset(self) -> None:
        """Every bucket full again: delete this store's keys (those under its prefix, found
        with SCAN, never a FLUSHDB), and the local fallback buckets."""
        await self._fallback.reset()
        epoch = self._epoch
        try:
            async with asyncio.timeout(_RESET_TIMEOUT):
                batch: list[bytes] = []
                async for key in self._redis.scan_iter(match=self._prefix + "*", count=1000):
                    batch.append(key)
                    if len(batch) >= 500:
                        await self._redis.unlink(*batch)
                        batch = []
                if batch:
                    await self._redis.unlink(*batch)
        except FAILURES as exc:
            self._mark_down(exc, epoch)

    async def status(self) -> str:
        """'ok' when Redis answers a PING in time, else 'degraded' (buckets are local)."""
        answered = await self._guarded(self._redis.ping)
        return "ok" if answered else "degraded"

    async def close(self) -> None:
        """Close every connection to Redis."""
        if self._sender is not None:
            self._sender.cancel()
            with suppress(asyncio.CancelledError):
                await self._sender
        await self._redis.aclose()
        await self._fallback.close()

    async def _remote_hit(self, key: str, capacity: int, rate: float) -> Decision:
        now = "" if self._server_time is None else repr(self._server_time())
        allowed, ahead = await self._sent(self._prefix + key, [str(capacity), repr(rate), now])
        return decide(bool(allowed), float(ahead), capacity, rate)

    def _sent(self, key: str, args: list[str]) -> asyncio.Future[list[Any]]:
        """This hit's [allowed, seconds], from a script call shared with the hits that wait
        beside it. A hit while no call is in flight goes at once, alone; those that come
        while one is in flight go together in the next: one round trip for all of them.
        (redis-py costs about 70 µs of CPU per call: 16 tasks hitting in a loop measured
        74 µs per hit one call each, 17 µs batched.)"""
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._waiting.append((key, args, future))
        if self._sender is None:
            self._sender = asyncio.create_task(self._send_waiting())
        return future

    async def _send_waiting(self) -> None:
        try:
            while self._waiting:
                batch = [hit for hit in self._waiting[:MAX_BATCH] if not hit[2].done()]
                del self._waiting[:MAX_BATCH]  # a hit already done has given up (timed out)
                if batch:
                    await self._send(batch)
        finally:
            self._sender = None

    async def _send(self, batch: list[tuple[str, list[str], asyncio.Future[list[Any]]]]) -> None:
        keys = [key for key, _, _ in batch]
        try:
            answers = await self._script(keys=keys, args=[a for _, args, _ in batch for a in args])
        except BaseException as error:  # each hit's caller judges it (`_attempt`)
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(error)
            if isinstance(error, Exception):
                return
            raise  # cancelled: the store is closing
        for n, (_, _, future) in enumerate(batch):
            if not future.done():
                future.set_result(answers[2 * n : 2 * n + 2])

    async def _guarded(self, call: Callable[[], Awaitable[T]]) -> T | None:
        """Run `call` on Redis unless Redis is known to be down; None if not run or failed."""
        if not self._down:
            return await self._attempt(call)
        if self._probing or self._clock() < self._retry_at:
            return None
        # One request probes a Redis that was down; the rest keep using local buckets meanwhile.
        self._probing = True
        try:
            return await self._attempt(call)
        finally:
            self._probing = False

    async def _attempt(self, call: Callable[[], Awaitable[T]]) -> T | None:
        epoch = self._epoch
        try:
            # Socket timeouts alone do not bound every path (pool waits, connect handshakes,
            # a peer that accepts and never answers); this caps the whole call.
            async with asyncio.timeout(self._timeout):
                try:
                    result = await call()
                except BROKEN:
                    # The pool has dropped the broken connection; drop its idle siblings
                    # too, so the second try (and every call after) gets a fresh one.
                    await self._pool.disconnect(inuse_connections=False)
                    result = await call()
        except FAILURES as exc:
            self._mark_down(exc, epoch)
            return None
        self._mark_up(epoch)
        return result

    def _mark_down(self, exc: BaseException, epoch: int) -> None:
        if epoch != self._epoch:
            return  # began before the last transition: says nothing about Redis now
        self._retry_at = self._clock() + self._backoff
        if not self._down:
            self._down = True
            self._epoch += 1
            reason = str(exc) or type(exc).__name__
            log.warning("Redis rate-limit store unreachable (%s); using in-process buckets", reason)

    def _mark_up(self, epoch: int) -> None:
        if self._down and epoch == self._epoch:
            self._down = False
            self._epoch += 1
            log.info("Redis rate-limit store reachable again; buckets are shared again")
