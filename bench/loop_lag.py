"""The longest event-loop stall under PATCH load (issue 20: under 2 ms, "loop lag sampled every
1 ms"), from the server's own sampler (`FRSYNC_LOOP_LAG_SAMPLE_MS`, src/frsync/api/loop_lag.py)
read off /metrics before and after the load.

/metrics shows the longest lag since the workers started, so the longest of the load alone is
exact when the load set a new one; otherwise the histogram's difference bounds it.
"""

from __future__ import annotations

import time
import urllib.request
from dataclasses import dataclass

from bench.servers import Server

SAMPLE_MS = "1"
GOAL = "0.002"  # seconds, as the histogram's `le` label spells it
# Longer than the workers' 1 s publish interval: a scrape then holds every worker's samples.
_SETTLE_SECONDS = 1.5
_METRIC = "frsync_event_loop_lag_seconds"


@dataclass
class Reading:
    buckets: dict[str, int]  # `le` → samples at or under it (cumulative)
    longest_s: float  # since the workers started


@dataclass
class StallResult:
    samples: int
    over: dict[str, int]  # `le` bound → samples of the load above it
    longest_s: float | None  # exact, when the load set a new longest
    at_most_s: float  # the longest of the load is at most this

    def met(self) -> bool:
        return self.over[GOAL] == 0


def read(server: Server) -> Reading:
    """The pooled lag of every worker, after letting each publish its latest samples."""
    time.sleep(_SETTLE_SECONDS)
    with urllib.request.urlopen(server.base_url + "/metrics", timeout=10) as answer:
        text = answer.read().decode()
    buckets, longest = {}, None
    for line in text.splitlines():
        name, _, value = line.rpartition(" ")
        if name.startswith(f'{_METRIC}_bucket{{le="'):
            buckets[name.split('"')[1]] = int(value)
        elif name == f"{_METRIC}_max":
            longest = float(value)
    if longest is None:
        raise RuntimeError(f"{server.name} shows no event-loop lag: is its sampler on?")
    return Reading(buckets, longest)


def during(before: Reading, after: Reading) -> StallResult:
    """What the samples taken between two readings say about the longest stall among them."""
    under = {le: count - before.buckets.get(le, 0) for le, count in after.buckets.items()}
    samples = under.pop("+Inf")
    over = {le: samples - count for le, count in under.items()}
    if after.longest_s > before.longest_s:
        return StallResult(samples, over, after.longest_s, after.longest_s)
    bound = min((float(le) for le, count in over.items() if count == 0), default=before.longest_s)
    return StallResult(samples, over, None, min(bound, before.longest_s))
