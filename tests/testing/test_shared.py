"""The sandbox the xdist workers of a run share, driven as the workers drive it: started by the
first, found by the others, stopped by the last — with crashed workers and servers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from frsync.testing import _shared
from frsync.testing._server import is_server


def _state(root: Path) -> dict:
    return json.loads((root / _shared.STATE).read_text())


def _starts(root: Path) -> list[str]:
    return (root / _shared.LOG).read_text().splitlines()


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_first_worker_starts_the_others_find_and_the_last_stops(tmp_path: Path) -> None:
    url, token = _shared.acquire(tmp_path, "gw0")
    assert _shared.acquire(tmp_path, "gw1") == (url, token)
    assert len(_starts(tmp_path)) == 1
    pid = _state(tmp_path)["server"]["pid"]

    _shared.finish(tmp_path, "gw0", 2)
    assert httpx.get(f"{url}/healthz").status_code == 200  # gw1 still runs tests on it

    _shared.finish(tmp_path, "gw1", 2)
    assert not is_server(pid)
    assert _state(tmp_path)["server"] is None


def test_a_crashed_worker_counts_as_finished(tmp_path: Path) -> None:
    _shared.acquire(tmp_path, "gw0")
    state = _state(tmp_path)
    pid = state["server"]["pid"]
    state["workers"]["gw1"] = {"pid": _dead_pid(), "done": False}  # it died mid-run
    (tmp_path / _shared.STATE).write_text(json.dumps(state))

    _shared.finish(tmp_path, "gw0", 2)
    assert not is_server(pid)


def test_a_worker_that_finishes_before_anyone_started_a_sandbox_writes_nothing(
    tmp_path: Path,
) -> None:
    _shared.finish(tmp_path, "gw1", 2)
    assert list(tmp_path.iterdir()) == []


def test_a_dead_server_is_replaced_by_the_next_worker(tmp_path: Path) -> None:
    url, _ = _shared.acquire(tmp_path, "gw0")
    pid = _state(tmp_path)["server"]["pid"]
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while is_server(pid) and time.monotonic() < deadline:  # SIGKILL lands asynchronously
        time.sleep(0.01)
    new_url, _ = _shared.acquire(tmp_path, "gw1")
    assert new_url != url and len(_starts(tmp_path)) == 2
    assert httpx.get(f"{new_url}/healthz").status_code == 200
    _shared.finish(tmp_path, "gw0", 2)
    _shared.finish(tmp_path, "gw1", 2)
    assert _state(tmp_path)["server"] is None


def test_controller_stops_a_server_every_worker_left_behind(tmp_path: Path) -> None:
    # A worker that starts the sandbox and dies without finishing (os._exit: no teardown).
    code = (
        "import os, sys\nfrom pathlib import Path\nfrom frsync.testing import _shared\n"
        "_shared.acquire(Path(sys.argv[1]), 'gw0')\nos._exit(3)\n"
    )
    crashed = subprocess.run([sys.executable, "-c", code, str(tmp_path)], timeout=300)
    assert crashed.returncode == 3
    server = _state(tmp_path)["server"]
    assert is_server(server["pid"])  # orphaned, still serving

    _shared.sweep(tmp_path)
    assert not is_server(server["pid"])
    assert not Path(server["workdir"]).exists()
    assert _state(tmp_path)["server"] is None
