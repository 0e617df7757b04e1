"""`frsync serve --workers 2` whose supervisor is killed with SIGKILL (SPEC §7): its workers
go with it, nothing it made is left behind for long, and a new `serve` on the same port
starts and answers."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import httpx
import pytest

from frsync import supervisor
from tests.ops.conftest import FRSYNC, ServeProcess, env_for
from tests.support import wait_for, wait_ready

GENEROUS = 20.0  # seconds: a loaded 2-core machine, not the 1 s the workers actually take


def _children(pid: int) -> list[int]:
    """Processes whose parent is `pid` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited; only its parent's wait is missing


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_workers_die_with_a_killed_supervisor_and_serve_restarts(tmp_path: Path) -> None:
    env = {**env_for(tmp_path), "TMPDIR": str(tmp_path)}  # the metrics directory lands here
    first = ServeProcess(env, tmp_path / "first.log", "--workers", "2")
    second = None
    workers: list[int] = []
    try:
        wait_ready(first.base)
        wait_for(lambda: len(_children(first.process.pid)) >= 2, "two workers started", GENEROUS)
        workers = [pid for pid in _children(first.process.pid) if _alive(pid)]
        made = list(tmp_path.glob("frsync-metrics-*"))
        assert made, "serve --workers 2 makes a metrics directory"

        first.process.send_signal(signal.SIGKILL)
        first.process.wait(timeout=GENEROUS)
        wait_for(
            lambda: not any(_alive(pid) for pid in workers), f"workers {workers} gone", GENEROUS
        )
        assert made[0].exists()  # nobody cleaned up: the supervisor had no chance

        second = _serve_on(env, tmp_path, first.port)  # the same port
        wait_ready(second.base)
        assert httpx.get(f"{second.base}/healthz", timeout=5).status_code == 200
        assert not made[0].exists(), "the crashed run's metrics directory is removed"
    finally:
        for pid in workers:  # a failed run must not leave its orphans behind
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        for server in (first, second):
            if server is not None and server.process.poll() is None:
                server.process.send_signal(signal.SIGTERM)
                server.process.wait(timeout=30)


def _serve_on(env: dict[str, str], tmp_path: Path, port: int) -> ServeProcess:
    """`frsync serve --workers 2 --port PORT` (ServeProcess picks a free port of its own)."""
    server = ServeProcess.__new__(ServeProcess)
    server.port, server.base, server.log = port, f"http://127.0.0.1:{port}", tmp_path / "2.log"
    with server.log.open("wb") as sink:
        server.process = subprocess.Popen(
            [*FRSYNC, "serve", "--port", str(port), "--workers", "2"],
            env=env, stdout=sink, stderr=subprocess.STDOUT,
        )  # fmt: skip
    return server


def test_sweep_removes_only_directories_of_dead_supervisors(tmp_path: Path) -> None:
    mine = supervisor.private_dir("metrics", str(tmp_path))
    dead = tmp_path / "frsync-metrics-999999999-abc"  # no such pid can exist (pid_max < 2**22)
    dead.mkdir()
    (dead / "w1.msgpack").write_bytes(b"x")
    other = tmp_path / "frsync-metrics-old"  # no pid in the name: not ours to judge
    other.mkdir()

    removed = supervisor.sweep_stale("metrics", str(tmp_path))

    assert removed == [dead]
    assert Path(mine).is_dir() and other.is_dir() and not dead.exists()
    assert Path(mine).name.startswith(f"frsync-metrics-{os.getpid()}-")
