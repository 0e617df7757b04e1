"""What `frsync serve` adds around uvicorn for several workers on one host: one rate-limit
table they share, a supervisor that shuts the door at SIGTERM, and proxy trust off by default.

- **Rate limits** (SPEC §4): without Redis, each worker process would keep its own buckets
  and a token would get `workers` times its limit. With `--workers` > 1 and no Redis URL,
  `serve` creates a shared-memory table (`ratelimit/shared.py`) and hands its `shm://` URL to
  the workers; an explicit `memory://` with several workers is refused (exit 2).
- **Shutdown**: uvicorn's supervisor keeps the listening socket open until it exits, so after
  SIGTERM the kernel went on queueing new connections that no worker would ever accept: they
  hung for the whole grace period and were then reset. `ClosingMultiprocess` closes its copy
  of the socket in the signal handler and passes SIGTERM to the workers at once; each worker
  closes its own copy as its shutdown starts (uvicorn `Server.shutdown`), so new connections
  are refused within a worker's event-loop tick (~0.1 s) while requests in flight finish or
  get their 503 as before.
- **Crashes** (SPEC §7): a supervisor killed with SIGKILL runs no handler, and its workers
  would live on as orphans holding the port. Each worker asks the kernel for SIGKILL when its
  parent dies (`PR_SET_PDEATHSIG`, Linux) and also watches the pipe that the parent holds
  open for it (`multiprocessing.parent_process().sentinel`, closed by the kernel when the
  parent dies) from a thread, so it goes within a second either way (`die_with_supervisor`).
  The directories `serve` makes for the workers (metrics, the shared rate-limit table) carry
  the supervisor's pid in their name, and a later `serve` removes those whose supervisor is
  gone (`private_dir`, `sweep_stale`): a crash leaves nothing a new start trips on.
- **SIGTERM and cleanup**: SIGTERM's default action ends a process at once, running no
  `finally`; and uvicorn, once a single worker has shut down, raises the signal that stopped
  it again with the handler it found. So a 1-worker `serve` died there, before stopping its
  SQLite write process (killed by the kernel instead) and removing its directories.
  `cleanup_before_sigterm` makes SIGTERM unwind the stack first, then end the process by
  SIGTERM as before, so its parent sees the same exit.
- **X-Forwarded-For**: uvicorn believes it from 127.0.0.1 unless told otherwise, which let
  anything on the host pick its own client address and dodge the per-address limit on bad
  tokens. No proxy is trusted unless `--forwarded-allow-ips` names it.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import dataclasses
import logging
import multiprocessing
import multiprocessing.connection
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlsplit

import uvicorn
from uvicorn.supervisors.multiprocess import Multiprocess

from frsync.config import Settings

log = logging.getLogger("frsync.server")
# mkdtemp below makes a private (0700) directory in it, so a shared /dev/shm is safe.
_SHM = Path("/dev/shm")  # noqa: S108


class ServeConfigError(ValueError):
    """A setting `serve` cannot honour; the message says which and why (exit 2)."""


def shared_rate_limits(settings: Settings) -> tuple[Settings, str | None]:
    """Settings whose rate-limit store every worker shares, and a directory to remove
    afterwards (one made here). One worker, or a Redis URL: unchanged."""
    if settings.workers <= 1:
        return settings, None
    scheme = urlsplit(settings.rate_limit_url or "").scheme.lower()
    if scheme == "memory":
        raise ServeConfigError(
            f"FRSYNC_REDIS_URL=memory:// with --workers {settings.workers}: in-process buckets"
            " would give each token its limit once per worker; leave the URL unset (the"
            " workers then share one table on this host) or use redis://"
        )
    if scheme:
        return settings, None  # Redis (or a table the operator set up): already shared
    # /dev/shm is memory, not disk: the table's pages never wait on I/O.
    made = private_dir("ratelimit", shared_memory_dir())
    url = f"shm://{Path(made).resolve() / 'buckets'}"
    return dataclasses.replace(settings, rate_limit_url=url), made


def shared_memory_dir() -> str | None:
    """The shared-memory folder (`_SHM`) when this host has one we may write in; None: the
    temporary directory."""
    return str(_SHM) if _SHM.is_dir() and os.access(_SHM, os.W_OK) else None


def private_dir(kind: str, where: str | None = None) -> str:
    """A private (0700) directory `frsync-<kind>-<this pid>-…` for this run's workers, after
    removing those a crashed supervisor left behind."""
    sweep_stale(kind, where)
    return tempfile.mkdtemp(prefix=f"frsync-{kind}-{os.getpid()}-", dir=where)


def sweep_stale(kind: str, where: str | None = None) -> list[Path]:
    """Remove this user's `frsync-<kind>-<pid>-…` directories whose supervisor is gone;
    the ones removed. A directory of a live process (or another user's) is left alone."""
    removed = []
    for path in Path(where or tempfile.gettempdir()).glob(f"frsync-{kind}-*-*"):
        pid = path.name.split("-")[2]
        if not pid.isascii() or not pid.isdigit() or _alive(int(pid)):
            continue
        try:
            if path.stat().st_uid != os.getuid() or not path.is_dir():
                continue
        except OSError:
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: not ours to judge
    return True


_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_PR_SET_NAME = 15
WRITE_PROCESS_NAME = b"frsync-write"  # what `ps` and /proc/<pid>/comm show for it


def name_this_process(name: bytes) -> None:
    """Linux: the name `ps`, `top` and /proc/<pid>/comm show (15 bytes at most), so that an
    operator (and the benchmarks) can tell the write process from the workers."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        libc.prctl(_PR_SET_NAME, ctypes.c_char_p(name[:15]), 0, 0, 0)


def die_with_supervisor() -> None:
    """In a worker process: be killed within a second of the supervisor's death, however it
    dies. Does nothing in a process that no supervisor started (`serve` with one worker)."""
    parent = multiprocessing.parent_process()
    if parent is None or parent.sentinel is None:
        return
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent.pid:  # the parent died before the line above
        os.kill(os.getpid(), signal.SIGKILL)
    threading.Thread(
        target=_die_when_readable, args=(parent.sentinel,), name="supervisor-watch", daemon=True
    ).start()


def _die_when_readable(sentinel: int) -> None:
    # The sentinel becomes readable only when the parent's end closes: the parent is gone.
    multiprocessing.connection.wait([sentinel])
    log.error("supervisor gone; this worker stops now")
    os.kill(os.getpid(), signal.SIGKILL)


def remove_dir(made: str | None) -> None:
    if made is not None:
        shutil.rmtree(made, ignore_errors=True)


def proxy_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's proxy options: X-Forwarded-For believed only from the listed proxies."""
    if not settings.forwarded_allow_ips:
        return {"proxy_headers": False, "forwarded_allow_ips": ""}
    return {"proxy_headers": True, "forwarded_allow_ips": settings.forwarded_allow_ips}


class ClosingMultiprocess(Multiprocess):
    """uvicorn's supervisor, except that SIGTERM/SIGINT close the listening sockets and
    stop the workers at once (see the module docstring)."""

    def __init__(self, config: uvicorn.Config, sockets: list[socket.socket]) -> None:
        super().__init__(config, sockets)
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._stop)

    def _stop(self, sig: int, frame: FrameType | None) -> None:
        # A Python-level handler runs on the main thread between bytecodes, so closing a
        # socket here is safe; the supervisor loop then wakes from its wait at once.
        for sock in self.sockets:
            sock.close()
        if not self.should_exit.is_set():
            log.info("%s: listening socket closed; stopping workers", signal.Signals(sig).name)
        self.should_exit.set()


class _Terminated(BaseException):
    """SIGTERM, unwinding the stack (BaseException: no `except Exception` swallows it)."""


@contextlib.contextmanager
def cleanup_before_sigterm() -> Iterator[None]:
    """Inside, SIGTERM (when uvicorn's own handler is not installed, and uvicorn raising it
    again after its shutdown) runs every `finally` on its way out; the process then ends
    by SIGTERM, as it would have. Main thread only, as any signal handler."""

    def unwind(signum: int, frame: FrameType | None) -> None:
        raise _Terminated

    previous = signal.signal(signal.SIGTERM, unwind)
    try:
        yield
    except _Terminated:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.raise_signal(signal.SIGTERM)
        raise  # not reached: the default action has ended the process
    finally:
        signal.signal(signal.SIGTERM, previous)


def run(app: str, **options: Any) -> None:
    """`uvicorn.run(app, **options)`, with `ClosingMultiprocess` as the supervisor when there
    are several workers."""
    if options.get("workers", 1) <= 1:
        uvicorn.run(app, **options)
        return
    config = uvicorn.Config(app, **options)
    sock = config.bind_socket()
    try:
        ClosingMultiprocess(config, sockets=[sock]).run()
    except KeyboardInterrupt:  # pragma: no cover - a second Ctrl-C
        pass
    finally:
        sock.close()
