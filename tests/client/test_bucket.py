"""The client-side bucket on a controllable clock, against the server's own bucket arithmetic."""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Callable

import pytest

from frsync.client import ClientBucket
from frsync.client._bucket import Ticket
from frsync.ratelimit.memory import MemoryStore


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept = 0.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept += seconds
        self.now += seconds


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


def pool_headers(size: int, used: int, rate: float) -> dict[str, str]:
    return {
        "x-auth-pool-size": str(size),
        "x-auth-pool-used": str(used),
        "x-auth-replenished-per-second": str(rate),
    }


def wait_turn(bucket: ClientBucket, fake_time: FakeTime) -> tuple[Ticket, float]:
    """Queue, then sleep (on the fake clock) until the bucket lets the ticket go."""
    ticket, waited = bucket.reserve(), 0.0
    while (delay := bucket.poll(ticket)) > 0:
        fake_time.sleep(delay)
        waited += delay
    return ticket, waited


def take(bucket: ClientBucket, fake_time: FakeTime) -> float:
    ticket, waited = wait_turn(bucket, fake_time)
    bucket.settle(ticket)
    return waited


def test_a_full_bucket_lets_a_burst_through_then_paces(fake_time: FakeTime) -> None:
    bucket = ClientBucket(40, 2.0, clock=fake_time.clock)
    for _ in range(40):
        assert take(bucket, fake_time) == 0.0
    assert take(bucket, fake_time) == pytest.approx(0.5)
    assert take(bucket, fake_time) == pytest.approx(0.5)


def test_headers_set_the_shape(fake_time: FakeTime) -> None:
    bucket = ClientBucket(clock=fake_time.clock)
    bucket.observe(pool_headers(10, 4, 5.0))
    assert (bucket.capacity, bucket.rate, bucket.level) == (10, 5.0, 6.0)


def test_a_gap_under_one_token_is_rounding_and_kept(fake_time: FakeTime) -> None:
    bucket = ClientBucket(40, 2.0, clock=fake_time.clock)
    take(bucket, fake_time)
    fake_time.now += 0.3  # 39.6 tokens: the server reports ceil(0.4) = 1 used
    bucket.observe(pool_headers(40, 1, 2.0))
    assert bucket.level == pytest.approx(39.6)


def test_another_user_of_the_token_is_noticed(fake_time: FakeTime) -> None:
    bucket = ClientBucket(40, 2.0, clock=fake_time.clock)
    take(bucket, fake_time)
    bucket.observe(pool_headers(40, 31, 2.0))  # someone else spent 30
    assert bucket.level == 9.0


def test_missing_or_garbled_headers_change_nothing(fake_time: FakeTime) -> None:
    bucket = ClientBucket(40, 2.0, clock=fake_time.clock)
    bucket.observe({})
    bucket.observe({"x-auth-pool-used": "lots", "x-auth-replenished-per-second": "nan"})
    assert (bucket.capacity, bucket.rate, bucket.level) == (40, 2.0, 40.0)


def test_after_a_429_nothing_is_sent_until_retry_after(fake_time: FakeTime) -> None:
    bucket = ClientBucket(40, 2.0, clock=fake_time.clock)
    bucket.block_for(3.0)
    assert take(bucket, fake_time) == pytest.approx(3.0)


def test_invalid_shape_is_refused() -> None:
    with pytest.raises(ValueError, match="capacity"):
        ClientBucket(0, 2.0)


def simulate(fake_time: FakeTime, requests: int, latency: Callable[[int], float]) -> int:
    """`requests` sent one after another against the server's GCRA; returns the 429s met."""
    server = MemoryStore(clock=fake_time.clock)
    bucket = ClientBucket(40, 2.0, clock=fake_time.clock)
    refused = 0
    for number in range(requests):
        ticket, _ = wait_turn(bucket, fake_time)
        fake_time.now += latency(number)  # the request on its way
        decision = server.hit_now("token", 40, 2.0)
        refused += not decision.allowed
        fake_time.now += latency(number)  # the answer on its way back
        bucket.settle(ticket, pool_headers(decision.size, decision.used, decision.rate))
    return refused


@pytest.mark.parametrize("seed", range(5))
def test_sole_user_never_meets_a_429_and_uses_the_whole_rate(seed: int) -> None:
    fake_time, jitter = FakeTime(), random.Random(seed)
    assert simulate(fake_time, 500, lambda _: jitter.uniform(0.0005, 0.05)) == 0
    assert 500 / (40 + 2.0 * fake_time.now) >= 0.97


def test_slow_first_request_does_not_put_the_copy_ahead(fake_time: FakeTime) -> None:
    # A cold server takes its time over the first request while its bucket is full: the
    # refill of that time is lost there, and must not be counted here either.
    assert simulate(fake_time, 60, lambda number: 0.2 if number == 0 else 0.001) == 0


def test_two_users_of_one_token_are_told_apart_by_the_headers(fake_time: FakeTime) -> None:
    server = MemoryStore(clock=fake_time.clock)
    ours = ClientBucket(40, 2.0, clock=fake_time.clock)
    for _ in range(35):  # another process drains the bucket first
        server.hit_now("token", 40, 2.0)
    ticket, _ = wait_turn(ours, fake_time)
    decision = server.hit_now("token", 40, 2.0)
    ours.settle(ticket, pool_headers(decision.size, decision.used, decision.rate))
    refused = 0
    for _ in range(20):
        ticket, _ = wait_turn(ours, fake_time)
        decision = server.hit_now("token", 40, 2.0)
        refused += not decision.allowed
        ours.settle(ticket, pool_headers(decision.size, decision.used, decision.rate))
    assert refused == 0


def simulate_concurrent(
    callers: int, seconds: float, latency: Callable[[], float]
) -> tuple[int, int]:
    """`callers` sharing one bucket, each sending one request after another, interleaved on a
    fake clock against the server's GCRA, for `seconds`; returns (admitted, refused)."""
    fake_time = FakeTime()
    server = MemoryStore(clock=fake_time.clock)
    bucket = ClientBucket(40, 2.0, clock=fake_time.clock)
    events: list[tuple[float, int, str, Ticket]] = []
    order = itertools.count()
    answers: dict[int, dict[str, str]] = {}
    admitted = refused = 0

    def at(when: float, what: str, ticket: Ticket) -> None:
        heapq.heappush(events, (when, next(order), what, ticket))

    for _ in range(callers):
        at(0.0, "poll", bucket.reserve())
    while events:
        fake_time.now, _, what, ticket = heapq.heappop(events)
        if what == "poll":
            delay = bucket.poll(ticket)
            at(fake_time.now + (delay or latency()), "poll" if delay else "arrive", ticket)
        elif what == "arrive":
            decision = server.hit_now("token", 40, 2.0)
            admitted += decision.allowed
            refused += not decision.allowed
            answers[id(ticket)] = pool_headers(decision.size, decision.used, decision.rate)
            at(fake_time.now + latency(), "answer", ticket)
        else:
            bucket.settle(ticket, answers.pop(id(ticket)))
            if fake_time.now < seconds:
                at(fake_time.now, "poll", bucket.reserve())
    return admitted, refused


@pytest.mark.parametrize(("callers", "seed"), [(2, 0), (8, 1), (16, 2), (16, 3)])
def test_concurrent_callers_never_meet_a_429_and_use_the_whole_rate(
    callers: int, seed: int
) -> None:
    jitter = random.Random(seed)
    admitted, refused = simulate_concurrent(callers, 300.0, lambda: jitter.uniform(0.001, 0.2))
    assert refused == 0
    assert admitted / (40 + 2.0 * 300.0) >= 0.97


def test_an_interrupted_caller_gives_its_turn_back(fake_time: FakeTime) -> None:
    bucket = ClientBucket(1, 2.0, clock=fake_time.clock)
    first, second, third = bucket.reserve(), bucket.reserve(), bucket.reserve()
    assert bucket.poll(first) == 0.0
    assert bucket.poll(third) == pytest.approx(1.0)  # behind the first and the second
    bucket.cancel(second)
    assert bucket.poll(third) == pytest.approx(0.5)
    bucket.cancel(first)  # sent, then interrupted: it may have reached the server
    assert bucket.level == pytest.approx(0.0)  # its token is taken
