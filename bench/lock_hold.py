"""Another process holds SQLite's write lock for 2 s while PATCHes keep coming: how long does
`/healthz` take meanwhile, and what do the PATCHes get?

A probe thread asks for `/healthz` every 10 ms (a keep-alive connection of its own) while
`wrk -c8` sends PATCHes; two seconds in, a separate process takes the write lock
(`BEGIN IMMEDIATE`, as `frsync load` does) and holds it 2 s. The figure is the slowest
`/healthz` answer whose request overlapped the hold.
"""

from __future__ import annotations

import http.client
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench import load
from bench.servers import ROOT, Server

HOLD_SECONDS = 2.0
_HOLDER = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=10)
db.execute("BEGIN IMMEDIATE")
print("held", flush=True)
time.sleep(float(sys.argv[2]))
db.execute("ROLLBACK")
"""


@dataclass
class LockHoldResult:
    hold_seconds: float
    healthz_probes_during_hold: int
    healthz_worst_ms: float
    healthz_p50_ms: float
    healthz_worst_outside_ms: float
    patch_statuses: dict[str, int] = field(default_factory=dict)
    patch_max_ms: float = 0.0


def _probe(base_url: str, stop: threading.Event, samples: list[tuple[float, float]]) -> None:
    host, port = base_url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    while not stop.is_set():
        started = time.monotonic()
        connection.request("GET", "/healthz")
        answer = connection.getresponse()
        answer.read()
        samples.append((started, time.monotonic() - started))
        time.sleep(0.01)
    connection.close()


def measure(server: Server, database: Path, targets: Path) -> LockHoldResult:
    samples: list[tuple[float, float]] = []
    stop = threading.Event()
    probe = threading.Thread(target=_probe, args=(server.base_url, stop, samples), daemon=True)
    seconds = 2 + HOLD_SECONDS + 2
    wrk = subprocess.Popen(
        ["wrk", "-t1", "-c8", f"-d{seconds:g}s", "--timeout", "10s", "--latency",
         "-s", str(load.LUA), server.base_url, "--", "patch", str(targets), "0"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
    )  # fmt: skip
    probe.start()
    time.sleep(2)
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(database), f"{HOLD_SECONDS:g}"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert holder.stdout is not None
    holder.stdout.readline()  # "held": the lock is taken from here on
    held_from = time.monotonic()
    holder.wait()
    held_until = time.monotonic()
    output, _ = wrk.communicate()
    stop.set()
    probe.join()
    during = [t for start, t in samples if start < held_until and start + t > held_from]
    outside = [t for start, t in samples if start + t < held_from or start > held_until]
    summary = load._bench_json(output)
    return LockHoldResult(
        hold_seconds=held_until - held_from,
        healthz_probes_during_hold=len(during),
        healthz_worst_ms=1000 * max(during, default=float("nan")),
        healthz_p50_ms=1000 * statistics.median(during) if during else float("nan"),
        healthz_worst_outside_ms=1000 * max(outside, default=float("nan")),
        patch_statuses=dict(summary["statuses"]),  # type: ignore[call-overload]
        patch_max_ms=float(summary.get("max_us", 0)) / 1000,  # type: ignore[arg-type]
    )
