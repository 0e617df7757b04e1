"""Drive one scenario against a running server and measure it.

Closed-loop load comes from `wrk -t1 -c32` with bench/wrk/frsync.lua; fixed-rate load from
bench/openloop.py. Both run as separate processes on loopback, and their own CPU time is
recorded (from RUSAGE_CHILDREN) to show the generator is not the bottleneck.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from bench.servers import ROOT, Server, status_kib

LUA = ROOT / "bench" / "wrk" / "frsync.lua"
THREADS, CONNECTIONS = 1, 32


@dataclass
class Result:
    name: str
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    server_cpu_s: float
    generator_cpu_s: float
    peak_rss_mib: list[float]
    statuses: dict[str, int]
    expected: dict[str, int] = field(default_factory=dict)
    socket_errors: int = 0
    note: str = ""

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def cpu_per_1k(self) -> float:
        return 1000 * self.server_cpu_s / self.requests if self.requests else 0.0

    @property
    def generator_cpu_share(self) -> float:
        """Generator CPU seconds per second of run: 1.0 would be one core, saturated."""
        return self.generator_cpu_s / self.seconds if self.seconds else 0.0

    def valid(self) -> bool:
        """Every status is one some request was built to get, within what can be in flight
        at the end (those requests were built but never answered). Socket errors (wrk's 2 s
        timeouts included) are the server's doing and are reported beside, not here."""
        if not self.requests:
            return False
        if not self.expected:
            return True
        slack = THREADS * CONNECTIONS + 1
        return all(
            0 <= self.expected.get(status, 0) - count <= slack
            for status, count in self.statuses.items()
        )


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _bench_json(output: str) -> dict[str, object]:
    for line in output.splitlines():
        if line.startswith("BENCH_JSON "):
            parsed: dict[str, object] = json.loads(line.removeprefix("BENCH_JSON "))
            return parsed
    raise RuntimeError(f"the load generator printed no result:\n{output[-2000:]}")


def wrk(url: str, seconds: float, *args: str) -> tuple[dict[str, object], float]:
    """Run wrk; its JSON summary and the CPU seconds wrk itself used."""
    command = ["wrk", f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{seconds:g}s", "--latency",
               "-s", str(LUA), url, "--", *args]  # fmt: skip
    before = _children_cpu()
    done = subprocess.run(command, capture_output=True, text=True, check=True, cwd=ROOT)
    return _bench_json(done.stdout), _children_cpu() - before


def open_loop(
    url: str, targets: Path, rate: float, seconds: float
) -> tuple[dict[str, object], float]:
    command = [sys.executable, "-m", "bench.openloop", url, str(targets),
               "--rate", f"{rate:g}", "--seconds", f"{seconds:g}"]  # fmt: skip
    before = _children_cpu()
    done = subprocess.run(command, capture_output=True, text=True, check=True, cwd=ROOT)
    return _bench_json(done.stdout), _children_cpu() - before


def measure_wrk(name: str, server: Server, seconds: float, warmup: float, *args: str) -> Result:
    """Warm up (discarded), then one measured wrk run with the server's CPU and memory."""
    wrk(server.base_url, warmup, *args)
    cpu_before = server.cpu()
    summary, generator_cpu = wrk(server.base_url, seconds, *args)
    return Result(
        name=name,
        requests=int(summary["requests"]),  # type: ignore[call-overload]
        seconds=float(summary["duration_us"]) / 1e6,  # type: ignore[arg-type]
        p50_ms=float(summary["p50_us"]) / 1000,  # type: ignore[arg-type]
        p99_ms=float(summary["p99_us"]) / 1000,  # type: ignore[arg-type]
        server_cpu_s=server.cpu() - cpu_before,
        generator_cpu_s=generator_cpu,
        peak_rss_mib=peak_rss(server),
        statuses=dict(summary["statuses"]),  # type: ignore[call-overload]
        expected=dict(summary["expected"]),  # type: ignore[call-overload]
        socket_errors=int(summary["socket_errors"]),  # type: ignore[call-overload]
    )


def measure_open_loop(
    name: str, server: Server, targets: Path, rate: float, seconds: float
) -> Result:
    open_loop(server.base_url, targets, rate, 3)  # warm-up, discarded
    cpu_before = server.cpu()
    summary, generator_cpu = open_loop(server.base_url, targets, rate, seconds)
    answered = int(summary["answered"])  # type: ignore[call-overload]
    statuses: dict[str, int] = dict(summary["statuses"])  # type: ignore[call-overload]
    return Result(
        name=name,
        requests=answered,
        seconds=float(summary["elapsed_s"]),  # type: ignore[arg-type]
        p50_ms=float(summary["p50_us"]) / 1000,  # type: ignore[arg-type]
        p99_ms=float(summary["p99_us"]) / 1000,  # type: ignore[arg-type]
        server_cpu_s=server.cpu() - cpu_before,
        generator_cpu_s=generator_cpu,
        peak_rss_mib=peak_rss(server),
        statuses=statuses,
        expected={"204": int(summary["offered"])},  # type: ignore[call-overload]
        note=f"offered {rate:g} req/s for {seconds:g} s",
    )


def peak_rss(server: Server) -> list[float]:
    """VmHWM of each worker, MiB."""
    return [round(status_kib(pid, "VmHWM") / 1024, 1) for pid in server.workers()]
