"""Token buckets: the same behaviour from every store, then Redis outages and memory bounds.

The shared tests drive time by hand: the memory store reads the fake clock, and the Redis
store hands the same clock to its Lua script in place of Redis's TIME, so nothing here waits
on real time except the tests that are about real time.
"""

from __future__ import annotations

import asyncio
import math
import socket
import time
import tracemalloc

import pytest

from frsync.ratelimit import (
    Decision,
    MemoryStore,
    RateLimitStore,
    RedisStore,
    open_rate_limit_store,
)
from frsync.ratelimit.memory import PRUNE_INTERVAL

CAPACITY = 5
RATE = 0.5  # one token every 2 s
# How late past its timeout a request may answer while Redis is away. Generous, because a
# machine at load 8 on 2 cores schedules late; without the timeout a blackholed call never
# answers at all, so any finite bound shows it.
MARGIN = 5.0


async def hits(
    store: RateLimitStore, key: str, n: int, capacity: int = CAPACITY, rate: float = RATE
) -> list[Decision]:
    return [await store.hit(key, capacity, rate) for _ in range(n)]


def outage_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "unreachable" in r.getMessage()]


# --- the same behaviour from every store -------------------------------------------------


async def test_burst_of_capacity_is_allowed_then_refused(store):
    decisions = await hits(store, "k", CAPACITY + 1)

    assert [d.allowed for d in decisions] == [True] * CAPACITY + [False]
    assert [d.used for d in decisions] == [1, 2, 3, 4, 5, 5]
    assert [d.retry_after for d in decisions] == [0] * CAPACITY + [2]
    assert {(d.size, d.rate) for d in decisions} == {(CAPACITY, RATE)}


async def test_bucket_refills_one_token_per_interval(store, clock):
    await hits(store, "k", CAPACITY)

    clock.advance(1.9)
    assert not (await store.hit("k", CAPACITY, RATE)).allowed
    clock.advance(0.1)
    assert await store.hit("k", CAPACITY, RATE) == Decision(True, CAPACITY, CAPACITY, RATE, 0)
    assert not (await store.hit("k", CAPACITY, RATE)).allowed
    clock.advance(6.0)
    assert [d.allowed for d in await hits(store, "k", 4)] == [True, True, True, False]


async def test_refused_hits_cost_nothing(store, clock):
    await hits(store, "k", CAPACITY)
    refused = await hits(store, "k", 20)
    clock.advance(2.0)

    assert not any(d.allowed for d in refused)
    assert (await store.hit("k", CAPACITY, RATE)).allowed


async def test_retry_after_is_whole_seconds_rounded_up(store, clock):
    await hits(store, "k", 2, capacity=2, rate=0.4)  # one token every 2.5 s
    waits = []
    for step in (0.0, 0.5, 0.25, 0.75, 0.9):
        clock.advance(step)
        waits.append((await store.hit("k", 2, 0.4)).retry_after)
    clock.advance(0.1)

    assert waits == [3, 2, 2, 1, 1]
    assert (await store.hit("k", 2, 0.4)).allowed


async def test_used_counts_tokens_in_use_rounded_up(store, clock):
    assert [d.used for d in await hits(store, "k", 3, capacity=4, rate=1.0)] == [1, 2, 3]
    clock.advance(2.0)
    assert (await store.hit("k", 4, 1.0)).used == 2
    clock.advance(0.5)
    assert (await store.hit("k", 4, 1.0)).used == 3


async def test_idle_bucket_is_full_again(store, clock):
    await hits(store, "k", CAPACITY)
    clock.advance(1000.0)

    assert [d.used for d in await hits(store, "k", 2)] == [1, 2]


async def test_keys_have_independent_buckets(store):
    assert not (await hits(store, "a", CAPACITY + 1))[-1].allowed
    assert (await store.hit("b", CAPACITY, RATE)).used == 1


@pytest.mark.parametrize(("capacity", "rate"), [(0, 1.0), (5, 0.0), (5, -1.0), (5, math.inf)])
async def test_meaningless_limits_are_rejected(store, capacity, rate):
    with pytest.raises(ValueError, match="capacity"):
        await store.hit("k", capacity, rate)


async def test_concurrent_hits_admit_exactly_capacity(store):
    decisions = await asyncio.gather(*(store.hit("k", 40, 2.0) for _ in range(200)))
    allowed = [d for d in decisions if d.allowed]

    assert sorted(d.used for d in allowed) == list(range(1, 41))
    assert all(d.used == 40 and d.retry_after == 1 for d in decisions if not d.allowed)


# --- Redis: its own clock, shared buckets ------------------------------------------------


@pytest.mark.redis
async def test_redis_bucket_runs_on_server_time_and_expires(redis_stores):
    store = redis_stores.open(timeout=2.0, prefix="frsync:rl:")  # the production layout
    key = redis_stores.namespace + "k"
    decisions = await hits(store, key, 4, capacity=3, rate=1.0)
    ttl_ms = await redis_stores.client.pttl("frsync:rl:" + key)

    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert decisions[-1].retry_after == 1
    assert 2000 < ttl_ms <= 3000  # gone once the bucket would be full again
    await asyncio.sleep(decisions[-1].retry_after)
    assert (await store.hit(key, 3, 1.0)).allowed


@pytest.mark.redis
async def test_redis_bucket_is_shared_by_every_store(redis_stores):
    first, second = redis_stores.open(timeout=2.0), redis_stores.open(timeout=2.0)
    await hits(first, "k", CAPACITY, rate=0.01)

    assert not (await second.hit("k", CAPACITY, 0.01)).allowed


# --- Redis away: answer from local buckets, quickly, and come back -------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def timed(call):
    start = time.monotonic()
    result = await call
    return result, time.monotonic() - start


async def test_refused_redis_falls_back_to_local_buckets(redis_stores, ratelimit_log):
    url = f"redis://127.0.0.1:{free_port()}/0"
    store = redis_stores.open(url, timeout=0.25, backoff=0.05)
    answers = [await timed(store.hit("k", 3, 0.01)) for _ in range(4)]
    await asyncio.sleep(0.1)  # past the backoff: the next hit tries Redis again, and fails
    late, elapsed = await timed(store.hit("k", 3, 0.01))

    assert [d.allowed for d, _ in answers] == [True, True, True, False]
    assert max(t for _, t in answers) < 0.25 + MARGIN
    assert not late.allowed
    assert elapsed < 0.25 + MARGIN
    assert await store.status() == "degraded"
    assert len(outage_warnings(ratelimit_log)) == 1  # once per outage, not per request


async def test_silent_redis_cannot_hold_a_hit_past_the_timeout(blackhole_url, redis_stores):
    store = redis_stores.open(blackhole_url, timeout=0.2, backoff=0.05)
    decisions, elapsed = await timed(asyncio.gather(*(store.hit("k", 3, 0.01) for _ in range(10))))
    await asyncio.sleep(0.1)
    status, status_elapsed = await timed(store.status())  # probes again, waits out the timeout

    assert elapsed < 0.2 + MARGIN
    assert sum(d.allowed for d in decisions) == 3
    assert status == "degraded"
    assert status_elapsed < 0.2 + MARGIN


async def test_store_skips_a_dead_redis_during_the_backoff(blackhole_url, redis_stores):
    store = redis_stores.open(blackhole_url, timeout=2.0, backoff=60.0)
    await store.hit("k", 3, 0.01)
    answers = [await timed(store.hit("k", 3, 0.01)) for _ in range(5)]

    assert max(t for _, t in answers) < 1.0  # far less than the timeout: Redis is not asked
    assert await store.status() == "degraded"


@pytest.mark.redis
async def test_store_returns_to_redis_when_it_comes_back(redis_proxy, redis_stores, ratelimit_log):
    proxy, url = redis_proxy
    store = redis_stores.open(url, timeout=0.5, backoff=0.1)
    assert [d.used for d in await hits(store, "k", 2, rate=0.01)] == [1, 2]
    assert await store.status() == "ok"

    proxy.switch_off()
    assert [d.used for d in await hits(store, "k", 3, rate=0.01)] == [1, 2, 3]  # local bucket
    assert await store.status() == "degraded"

    proxy.switch_on()
    await asyncio.sleep(0.2)
    assert await store.status() == "ok"
    assert (await store.hit("k", CAPACITY, 0.01)).used == 3  # Redis's bucket held 2
    messages = [r.getMessage() for r in ratelimit_log.records]
    assert len(outage_warnings(ratelimit_log)) == 1
    assert any("reachable again" in m for m in messages)


# --- memory: bounded state ----------------------------------------------------------------


async def test_memory_forgets_buckets_that_are_full_again(clock):
    store = MemoryStore(clock=clock)
    largest = 0
    for i in range(100_000):  # 100k tokens seen once each, 1 ms apart
        await store.hit(f"token-{i}", 40, 2.0)
        largest = max(largest, len(store))
        clock.advance(0.001)
    clock.advance(PRUNE_INTERVAL)
    await store.hit("last", 40, 2.0)

    # A bucket stays for 20 s (40 tokens at 2/s), so about 20k are live at any time; sweeps
    # run each time the table doubles.
    assert largest <= 2 * 20_001
    assert len(store) == 1


def test_memory_holds_under_200_bytes_per_active_key(clock):
    store = MemoryStore(clock=clock)
    # 21,846 keys sits just past a dict resize: the emptiest, most expensive table per key.
    # Keys are 64 hex characters, as a SHA-256 token hash is, and are counted too.
    n = 21_846
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(n):
            store.hit_now(f"{i:064x}", 40, 2.0)
        per_key = (tracemalloc.get_traced_memory()[0] - before) / n
    finally:
        tracemalloc.stop()

    assert len(store) == n
    assert per_key <= 200


# --- choosing a store by URL --------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        (None, MemoryStore),
        ("", MemoryStore),
        ("memory://", MemoryStore),
        ("redis://127.0.0.1:6379/0", RedisStore),
        ("rediss://127.0.0.1:6380/0", RedisStore),
        ("unix:///run/redis.sock?db=0", RedisStore),
    ],
)
async def test_store_is_chosen_by_url_scheme(url, kind):
    store = open_rate_limit_store(url)
    try:
        assert isinstance(store, kind)
    finally:
        await store.close()


def test_unknown_scheme_is_refused_without_echoing_the_url():
    with pytest.raises(ValueError, match="'mysql'") as error:
        open_rate_limit_store("mysql://user:s3cret@db/0")
    assert "s3cret" not in str(error.value)


@pytest.mark.redis
async def test_connections_dropped_by_a_redis_restart_are_replaced_without_an_outage(
    redis_proxy, redis_stores, ratelimit_log
):
    """An instant restart leaves every pooled connection stale: each call that meets one
    tries again on a fresh connection, so the buckets stay in Redis and nothing is logged
    (before, concurrent calls on stale and fresh connections flapped the state and the log)."""
    proxy, url = redis_proxy
    # A dropped connection fails at once; the timeout is wide so that a slow machine's call
    # is not mistaken for an outage (that is another test's subject).
    store = redis_stores.open(url, timeout=10.0, backoff=0.05)
    await asyncio.gather(*(store.hit(f"warm-{n}", CAPACITY, 0.01) for n in range(24)))
    proxy.switch_off()  # the restart: every connection dropped ...
    proxy.switch_on()  # ... and Redis back at once
    for _ in range(CAPACITY - 1):
        decisions = await asyncio.gather(
            *(store.hit(f"warm-{n}", CAPACITY, 0.01) for n in range(24))
        )
        assert all(d.allowed for d in decisions)
    # Every bucket went on in Redis: the warm-up hit and these fill it, so the next is refused
    # (a local bucket would start empty and admit it).
    assert not (await store.hit("warm-0", CAPACITY, 0.01)).allowed
    assert await store.status() == "ok"
    assert [r.getMessage() for r in ratelimit_log.records] == []


@pytest.mark.redis
async def test_answers_that_began_before_an_outage_do_not_end_it(
    redis_stores, ratelimit_log, clock
):
    """Calls in flight when Redis goes: some fail, others that began earlier still answer,
    interleaved. Only the first failure changes the state; the recovery is the probe's, once
    Redis is back: one log line each."""
    from redis.exceptions import ConnectionError as RedisConnectionError

    # The fake clock ends the backoff when the test says, however slow the machine.
    store = redis_stores.open(timeout=1.0, backoff=0.2, clock=clock)
    real_script = store._script
    redis_down = True

    async def interleaved(*, keys, args):
        delay = float(keys[0].rsplit("-", 1)[1]) / 100
        await asyncio.sleep(delay)
        if redis_down and "dead" in keys[0]:
            raise RedisConnectionError("Connection refused.")
        return await real_script(keys=keys, args=args)

    store._script = interleaved
    # dead-1 fails at 10 ms, live-2 answers at 20 ms, dead-3 fails at 30 ms, ...
    keys = [f"{'dead' if n % 2 else 'live'}-{n}" for n in range(1, 9)]
    decisions = await asyncio.gather(*(store.hit(key, CAPACITY, RATE) for key in keys))
    assert all(d.allowed for d in decisions)
    assert await store.status() == "degraded"  # within the backoff: still down
    redis_down = False
    clock.advance(0.25)
    assert (await store.hit("after-0", CAPACITY, RATE)).allowed  # the probe: back on Redis
    assert await store.status() == "ok"
    messages = [r.getMessage() for r in ratelimit_log.records]
    assert len(outage_warnings(ratelimit_log)) == 1, messages
    assert sum("reachable again" in m for m in messages) == 1, messages


@pytest.mark.redis
async def test_hits_that_wait_while_one_is_in_flight_share_the_next_script_call(
    redis_stores,
) -> None:
    """redis-py costs about 70 µs of CPU per call: hits that come while a call is in flight
    go together in the next one, each still decided as if alone, in the order they came."""
    store = redis_stores.open(timeout=5.0)
    real_script = store._script
    calls: list[int] = []
    in_flight, release = asyncio.Event(), asyncio.Event()

    async def counted(*, keys, args):
        calls.append(len(keys))
        if len(calls) == 1:
            in_flight.set()
            await release.wait()  # the first call stays in flight while the others come
        return await real_script(keys=keys, args=args)

    store._script = counted
    first = asyncio.ensure_future(store.hit("first", CAPACITY, RATE))
    await in_flight.wait()
    same = [store.hit("shared", CAPACITY, RATE) for _ in range(CAPACITY + 3)]
    apart = [store.hit(f"own-{n}", CAPACITY, RATE) for n in range(20)]
    rest = asyncio.gather(*same, *apart)
    await asyncio.sleep(0)  # each hit's first step runs, and queues it
    assert len(store._waiting) == len(same) + len(apart)
    release.set()
    assert (await first).allowed
    decisions = await rest
    assert calls == [1, len(same) + len(apart)]  # the first alone, the rest in one call
    assert [d.allowed for d in decisions[: len(same)]] == [True] * CAPACITY + [False] * 3
    assert all(d.allowed for d in decisions[len(same) :])
    assert await store.status() == "ok"
