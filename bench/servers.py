"""The servers under test as real processes: start, wait until ready, account, stop.

CPU time and memory come from /proc: utime+stime of the whole process tree (uvicorn's
supervisor and its workers, or node for Prism) before and after a run, and each process's
peak RSS (VmHWM) and current RSS (VmRSS).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from frsync.supervisor import WRITE_PROCESS_NAME

ROOT = Path(__file__).resolve().parent.parent
PRISM = ROOT / "bench" / ".prism" / "node_modules" / ".bin" / "prism"
OPENAPI = ROOT / "src" / "frsync" / "api" / "openapi.json"
_TICKS = os.sysconf("SC_CLK_TCK")
# Bench tokens get buckets no run can empty, so the figures measure the server; the limiter
# itself stays on and every request still takes its token. Same for the per-address bucket
# of invalid tokens, which the hostile mix would otherwise turn into cheap 429s.
HUGE = "1000000"


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def status_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def descendants(pid: int) -> list[int]:
    """`pid` and every process below it."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue  # the process ended while we looked
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def _is_write_process(pid: int) -> bool:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/comm").read_bytes().strip() == WRITE_PROCESS_NAME
    return False


def _cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    base_url: str
    ready_path: str
    worker_count: int = 1

    def workers(self) -> list[int]:
        """The processes that answer requests: the server itself when it runs one worker,
        else uvicorn's spawned workers (not the SQLite write process, spawned too)."""
        if self.worker_count == 1:
            return [self.process.pid]
        tree = descendants(self.process.pid)[1:]
        return [p for p in tree if "multiprocessing.spawn" in _cmdline(p)
                and not _is_write_process(p)]  # fmt: skip

    def cpu(self) -> float:
        """CPU seconds of the whole tree so far."""
        total = 0.0
        for pid in descendants(self.process.pid):
            with contextlib.suppress(OSError):  # the process ended while we looked
                total += cpu_seconds(pid)
        return total

    def wait_ready(self, timeout: float = 60.0, expected_workers: int = 1) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}")
            if _answers(self.base_url + self.ready_path) and (
                len(self.workers()) >= expected_workers
            ):
                return
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not become ready within {timeout:.0f} s")

    def stop(self) -> None:
        """SIGTERM, as an operator would; SIGKILL only if it has not ended in 15 s."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


def _spawn(command: Sequence[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)


def start_frsync(
    name: str, database_url: str, port: int, workers: int, log: Path,
    redis_url: str | None = None, rate: str = HUGE, burst: str = HUGE,
    loop_lag_sample_ms: str | None = None,
) -> Server:  # fmt: skip
    """`frsync serve` with the rate limiter on (huge buckets unless told otherwise); the
    access log stays on (to a file), as in production. The event-loop lag sampler runs only
    when asked (`loop_lag_sample_ms`)."""
    env = {**os.environ, "FRSYNC_INVALID_TOKEN_RATE": HUGE, "FRSYNC_INVALID_TOKEN_BURST": HUGE}
    env.pop("FRSYNC_LOOP_LAG_SAMPLE_MS", None)
    if loop_lag_sample_ms:
        env["FRSYNC_LOOP_LAG_SAMPLE_MS"] = loop_lag_sample_ms
    command = [sys.executable, "-m", "frsync", "serve", "--database-url", database_url,
               "--port", str(port), "--workers", str(workers),
               "--rate", rate, "--burst", burst]  # fmt: skip
    if redis_url:
        command += ["--redis-url", redis_url]
    server = Server(name, _spawn(command, env, log), f"http://127.0.0.1:{port}", "/readyz", workers)
    server.wait_ready(expected_workers=workers if workers > 1 else 1)
    return server


def start_ceiling(name: str, database_url: str, port: int, workers: int, log: Path) -> Server:
    """bench/ceiling.py: the bare ASGI app doing a one-row UPDATE per request."""
    command = [sys.executable, "-m", "bench.ceiling", database_url, str(port), str(workers)]
    server = Server(name, _spawn(command, dict(os.environ), log), f"http://127.0.0.1:{port}", "/",
                    workers)  # fmt: skip
    server.wait_ready(expected_workers=workers if workers > 1 else 1)
    return server


def start_prism(port: int, log: Path) -> Server:
    """Stoplight Prism mocking frsync's own OpenAPI document (no state, no scopes)."""
    if not PRISM.exists():
        raise RuntimeError(f"Prism is not installed at {PRISM}")
    command = [str(PRISM), "mock", str(OPENAPI), "-p", str(port), "-h", "127.0.0.1"]
    server = Server("prism", _spawn(command, dict(os.environ), log), f"http://127.0.0.1:{port}",
                    "/healthz")  # fmt: skip
    server.wait_ready()
    return server
