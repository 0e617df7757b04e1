"""`/metrics`: request counts and latencies in Prometheus text format, summed over workers.

Why hand-written and not prometheus_client: the hot path here is two dict updates and one
bisect per request (1.5 µs measured, route lookup included; prometheus_client's multiprocess
mode writes several mmap'd values under a lock per request), the registry is an object born with the
app rather than a module-level global, and there is no extra dependency.

Several workers share one listening socket, so a scrape lands on any one of them. To keep a
scrape from passing one worker's numbers off as the total, each worker publishes a snapshot
of its numbers into a shared directory (`Settings.metrics_dir`) every second and when it
stops; the worker that answers the scrape publishes its own fresh one and sums them all.
Counters of a worker that has exited stay in the sum (counters never go down); gauges are
per process (label `pid`) and only from workers that published in the last few seconds.
Without a directory, a process reports its own numbers (one worker, or tests). The
event-loop lag samples (api/loop_lag.py, when sampled) pool like counters, their longest as
the longest of all workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from bisect import bisect_left
from collections.abc import Iterable
from pathlib import Path

import msgspec

from frsync.api.loop_lag import LAG_BUCKETS, LoopLag
from frsync.errors import StoreBusy
from frsync.ratelimit import RateLimitStore
from frsync.store import Store

# Seconds; le="+Inf" is implied. Spans a cached GET (~1 ms) up to a 503 after the store's
# busy timeout (~2 s) and the 10 s read timeout.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
UNMATCHED = "unmatched"  # route label of a path no route knows: raw paths would explode
PUBLISH_INTERVAL = 1.0
_STALE_AFTER = 5 * PUBLISH_INTERVAL
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Snapshot(msgspec.Struct, array_like=True):
    """One process's numbers, as published for its siblings."""

    pid: int
    written_at: float  # wall clock: compared across processes
    requests: list[tuple[str, str, int, int]]  # route, method, status, count
    latency: list[tuple[str, str, list[int], float]]  # route, method, bucket counts, sum
    store_up: int
    ratelimit_degraded: int
    loop_lag: LoopLag | None = None  # None: not sampled (last, so older snapshots still read)


class Metrics:
    """This process's counters; `observe` is the only call on the request path."""

    def __init__(self, directory: str | None = None) -> None:
        self.requests: dict[tuple[str, str, int], int] = {}
        # Per (route, method): one count per bucket (the last is > 10 s), not cumulative.
        self.buckets: dict[tuple[str, str], list[int]] = {}
        self.sums: dict[tuple[str, str], float] = {}
        self.store_up = 1
        self.ratelimit_degraded = 0
        self.loop_lag: LoopLag | None = None  # set by the lifespan when sampling is on
        self._directory = Path(directory) if directory else None
        self._file = self._directory / f"{os.getpid()}.msgpack" if self._directory else None

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one answered request."""
        key = (route, method, status)
        self.requests[key] = self.requests.get(key, 0) + 1
        series = (route, method)
        counts = self.buckets.get(series)
        if counts is None:
            counts = self.buckets[series] = [0] * (len(BUCKETS) + 1)
            self.sums[series] = 0.0
        counts[bisect_left(BUCKETS, seconds)] += 1
        self.sums[series] += seconds

    def add(self, snap: Snapshot) -> None:
        """Add another process's counters to these."""
        for route, method, status, count in snap.requests:
            key = (route, method, status)
            self.requests[key] = self.requests.get(key, 0) + count
        for route, method, counts, seconds in snap.latency:
            mine = self.buckets.get((route, method), [0] * len(counts))
            self.buckets[route, method] = [a + b for a, b in zip(mine, counts, strict=True)]
            self.sums[route, method] = self.sums.get((route, method), 0.0) + seconds
        if snap.loop_lag is not None:
            self.loop_lag = (self.loop_lag or LoopLag()).plus(snap.loop_lag)

    async def refresh_gauges(self, store: Store, limiter: RateLimitStore) -> None:
        """Ask the store and the rate-limit store how they are (each call is time-bounded)."""
        try:
            await store.ping()
            self.store_up = 1
        except StoreBusy:
            self.store_up = 0
        self.ratelimit_degraded = int(await limiter.status() != "ok")

    def snapshot(self) -> Snapshot:
        return Snapshot(
            pid=os.getpid(),
            written_at=time.time(),
            requests=[(r, m, s, n) for (r, m, s), n in self.requests.items()],
            latency=[(r, m, list(c), self.sums[r, m]) for (r, m), c in self.buckets.items()],
            store_up=self.store_up,
            ratelimit_degraded=self.ratelimit_degraded,
            loop_lag=self.loop_lag,
        )

    def publish(self) -> None:
        """Write this process's snapshot where its siblings read it (atomically)."""
        if self._file is None:
            return
        partial = self._file.with_suffix(".tmp")
        partial.write_bytes(msgspec.msgpack.encode(self.snapshot()))
        partial.replace(self._file)

    def collect(self) -> list[Snapshot]:
        """Every process's snapshot: this one fresh, the others as last published."""
        mine = self.snapshot()
        if self._directory is None:
            return [mine]
        self.publish()
        snapshots = [mine]
        for path in self._directory.glob("*.msgpack"):
            if path != self._file:
                with contextlib.suppress(OSError, msgspec.DecodeError):
                    snapshots.append(msgspec.msgpack.decode(path.read_bytes(), type=Snapshot))
        return snapshots

    async def publish_every(self, store: Store, limiter: RateLimitStore) -> None:
        """Background task of each worker: keep its snapshot and gauges fresh."""
        while True:
            await asyncio.sleep(PUBLISH_INTERVAL)
            await self.refresh_gauges(store, limiter)
            self.publish()


def render(snapshots: list[Snapshot]) -> bytes:
    """The Prometheus text exposition of the summed snapshots."""
    total = Metrics()
    for snap in snapshots:
        total.add(snap)
    requests, buckets, sums = total.requests, total.buckets, total.sums
    live = [s for s in snapshots if s.written_at > time.time() - _STALE_AFTER]
    states = [
        (pid, state, int(state == ("degraded" if degraded else "ok")))
        for pid, degraded in ((s.pid, s.ratelimit_degraded) for s in live)
        for state in ("ok", "degraded")
    ]
    lines = [
        *_family(
            "frsync_http_requests_total",
            "counter",
            "Requests answered, by route template, method and status.",
            _request_series(requests),
        ),
        *_family(
            "frsync_http_rate_limited_total",
            "counter",
            "Requests answered 429.",
            [("", _status_total(requests, 429))],
        ),
        *_family(
            "frsync_http_unavailable_total",
            "counter",
            "Requests answered 503.",
            [("", _status_total(requests, 503))],
        ),
        *_histogram(buckets, sums),
        *_loop_lag(total.loop_lag),
        *_family(
            "frsync_store_up",
            "gauge",
            "1 when the store answers, per worker process.",
            [(f'pid="{s.pid}"', s.store_up) for s in live],
        ),
        *_family(
            "frsync_ratelimit_store_state",
            "gauge",
            "Rate-limit store per worker: ok (shared buckets) or degraded (local "
            "buckets: Redis unreachable).",
            [(f'pid="{pid}",state="{state}"', on) for pid, state, on in states],
        ),
        *_family(
            "frsync_workers", "gauge", "Worker processes that published lately.", [("", len(live))]
        ),
    ]
    return ("\n".join(lines) + "\n").encode()


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _series(name: str, labels: str, value: float) -> str:
    text = str(value)  # ints stay exact: `:g` would print 1234567 as 1.23457e+06
    return f"{name}{{{labels}}} {text}" if labels else f"{name} {text}"


def _family(name: str, kind: str, help_: str, series: Iterable[tuple[str, float]]) -> list[str]:
    return [f"# HELP {name} {help_}", f"# TYPE {name} {kind}"] + [
        _series(name, labels, value) for labels, value in series
    ]


def _request_series(requests: dict[tuple[str, str, int], int]) -> list[tuple[str, float]]:
    return [
        (f'route="{_escape(route)}",method="{method}",status="{status}"', count)
        for (route, method, status), count in sorted(requests.items())
    ]


def _status_total(requests: dict[tuple[str, str, int], int], status: int) -> int:
    return sum(count for (_, _, code), count in requests.items() if code == status)


def _histogram(
    buckets: dict[tuple[str, str], list[int]], sums: dict[tuple[str, str], float]
) -> list[str]:
    name = "frsync_http_request_duration_seconds"
    lines = [
        f"# HELP {name} Time from request head to last response byte sent, by route.",
        f"# TYPE {name} histogram",
    ]
    for (route, method), counts in sorted(buckets.items()):
        labels = f'route="{_escape(route)}",method="{method}"'
        lines += _buckets(name, labels, BUCKETS, counts, sums[route, method])
    return lines


def _loop_lag(lag: LoopLag | None) -> list[str]:
    if lag is None:
        return []
    name = "frsync_event_loop_lag_seconds"
    return [
        f"# HELP {name} How much later than asked the event loop woke its sampling task.",
        f"# TYPE {name} histogram",
        *_buckets(name, "", LAG_BUCKETS, lag.counts, lag.total),
        f"# HELP {name}_max Longest event-loop lag sampled since the workers started.",
        f"# TYPE {name}_max gauge",
        f"{name}_max {lag.longest:.6f}",
    ]


def _buckets(
    name: str, labels: str, bounds: tuple[float, ...], counts: list[int], total: float
) -> list[str]:
    """One histogram series: cumulative buckets from per-bucket `counts`, then sum and count."""
    lines, running = [], 0
    for bound, count in zip((*bounds, float("inf")), counts, strict=True):
        running += count
        le = "+Inf" if bound == float("inf") else f"{bound:g}"
        lines.append(f'{name}_bucket{{{labels + "," if labels else ""}le="{le}"}} {running}')
    braces = f"{{{labels}}}" if labels else ""
    return [*lines, f"{name}_sum{braces} {total:.6f}", f"{name}_count{braces} {running}"]
