"""Event-loop lag: how much later than asked the loop wakes a sleeping task (issue 20).

A handler that holds the loop (a synchronous query, a long encode, a GC pause) delays every
other request of its worker by as long, and no request's latency shows whose fault it was.
When `Settings.loop_lag_sample_ms` is set, each worker runs `LoopLag.sample_every`: a task
that sleeps the interval again and again and records how late each wakeup came. `/metrics`
shows the pooled counts and the longest lag (api/metrics.py). Off by default: then no task
runs and the scrape has no such series.
"""

from __future__ import annotations

import asyncio
from bisect import bisect_left
from collections.abc import Awaitable, Callable
from time import monotonic

import msgspec

# Seconds. Issue 20's goal is no stall of 2 ms under PATCH load; the larger bounds tell a
# scheduling hiccup from a blocking call.
LAG_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.025, 0.1)


def _empty_counts() -> list[int]:
    return [0] * (len(LAG_BUCKETS) + 1)


class LoopLag(msgspec.Struct, array_like=True):
    """One process's lag samples (published as part of its metrics snapshot), or several
    processes' added together."""

    counts: list[int] = msgspec.field(default_factory=_empty_counts)  # per bucket, not cumulative
    total: float = 0.0  # seconds, over all samples
    longest: float = 0.0

    def record(self, lag: float) -> None:
        self.counts[bisect_left(LAG_BUCKETS, lag)] += 1
        self.total += lag
        self.longest = max(self.longest, lag)

    def plus(self, other: LoopLag) -> LoopLag:
        """These samples and `other`'s: counts and totals add, the longest is the longer."""
        counts = [a + b for a, b in zip(self.counts, other.counts, strict=True)]
        return LoopLag(counts, self.total + other.total, max(self.longest, other.longest))

    async def sample_every(
        self,
        interval: float,
        clock: Callable[[], float] = monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """Background task of a worker: sleep `interval` seconds, record how late it woke."""
        while True:
            due = clock() + interval
            await sleep(interval)
            self.record(max(0.0, clock() - due))
