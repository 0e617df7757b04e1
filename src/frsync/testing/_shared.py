"""One sandbox for all the pytest-xdist workers of a run: the first worker that needs it
starts it, the others find it, the last worker to finish stops it.

They meet in the run's temp root (`tmp_path_factory.getbasetemp().parent`, the folder of the
`popen-gwN` folders): `frsync-sandbox.json` says where the server runs and which workers have
finished, read and written only under an exclusive lock on `frsync-sandbox.lock`. A worker that
crashed is one whose pid is gone, and counts as finished. If the last worker crashes too, the
controller (which outlives every worker) stops what is left at its own session end.
`frsync-sandbox.log` keeps a line per server started, for whoever wants to count them.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from frsync.testing._server import ServerProcess, is_server, stop_server

STATE, LOCK, LOG = "frsync-sandbox.json", "frsync-sandbox.lock", "frsync-sandbox.log"


def acquire(root: Path, worker: str) -> tuple[str, str]:
    """The shared sandbox's URL and operator token, starting it when no live one is known."""
    with _locked(root):
        state = _load(root)
        state["workers"][worker] = {"pid": os.getpid(), "done": False}
        server = state.get("server")
        if server is None or not is_server(server["pid"]):
            started = ServerProcess.start(detached=True)  # it may outlive this worker
            server = {
                "url": started.url,
                "operatorToken": started.operator_token,
                "pid": started.pid,
                "workdir": str(started.workdir),
            }
            state["server"] = server
            with (root / LOG).open("a", encoding="utf-8") as log:
                log.write(f"{time.time():.3f} {worker} started pid {started.pid} {started.url}\n")
        _save(root, state)
    return server["url"], server["operatorToken"]


def finish(root: Path, worker: str, worker_count: int) -> None:
    """This worker is done with the run; the last one to be done stops the server."""
    if not (root / STATE).exists():
        return  # nobody started one (yet): the controller sweeps up after any that comes later
    with _locked(root):
        state = _load(root)
        state["workers"][worker] = {"pid": os.getpid(), "done": True}
        finished = [
            name
            for name, seen in state["workers"].items()
            if seen["done"] or not _pid_alive(seen["pid"])
        ]
        if state.get("server") is not None and len(finished) >= worker_count:
            _stop(state["server"])
            state["server"] = None
        _save(root, state)


def sweep(root: Path) -> None:
    """At the controller's session end: stop a server the workers left running (they crashed)."""
    if not (root / STATE).exists():
        return
    with _locked(root):
        state = _load(root)
        if state.get("server") is not None:
            _stop(state["server"])
            state["server"] = None
            _save(root, state)


def _stop(server: dict[str, Any]) -> None:
    stop_server(server["pid"], Path(server["workdir"]))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _load(root: Path) -> dict[str, Any]:
    try:
        state: dict[str, Any] = json.loads((root / STATE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        state = {"server": None, "workers": {}}
    return state


def _save(root: Path, state: dict[str, Any]) -> None:
    temporary = root / f"{STATE}.{os.getpid()}"
    temporary.write_text(json.dumps(state, indent=1), encoding="utf-8")
    temporary.replace(root / STATE)


@contextmanager
def _locked(root: Path) -> Iterator[None]:
    """An exclusive lock between the run's processes (released by the OS if one dies)."""
    with (root / LOCK).open("a+b") as handle:
        if sys.platform == "win32":
            import msvcrt

            handle.seek(0)
            msvcrt.locking(handle.fileno(), msvcrt.LK_LOCK, 1)
            try:
                yield
            finally:
                handle.seek(0)
                msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)
        else:
            import fcntl

            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
