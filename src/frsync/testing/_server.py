"""One `frsync serve --sandbox` process over a copy of the template database, in a folder of
its own, and how to tell it is up: its `/healthz` polled from the moment it is spawned, with a
backoff from 2 ms to 50 ms (never a fixed sleep: a fast start is not made to wait)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from frsync.testing._admin import SandboxError
from frsync.testing._template import DATABASE, server_environment, template

START_TIMEOUT = 60.0
# Seconds a stopping sandbox gets to end on its own before SIGKILL. An idle server ends in
# ~0.1 s; one still holding a request a rule delays would wait out its whole grace period
# (the session's end, kept waiting for an answer no test will read). Its database is a copy
# about to be deleted, so there is nothing to lose.
STOP_TIMEOUT = 1.0
FIRST_POLL, POLL_GROWTH, LAST_POLL = 0.002, 1.5, 0.05  # seconds between readiness probes
_BIND_ATTEMPTS = 3  # a free port can be taken by someone else before the server binds it
_LOG = "serve.log"
# Starts the command it is given and says its pid; the server's output goes to our log.
_LAUNCHER = (
    "import subprocess, sys; "
    "print(subprocess.Popen(sys.argv[1:], stdout=sys.stderr, stdin=subprocess.DEVNULL).pid)"
)


class _PortTaken(Exception):
    pass


@dataclass
class ServerProcess:
    """A running sandbox server. `stop()` ends it and removes its folder; a process other
    than the one that started it stops it with `stop_server(pid, workdir)`.

    `detached=True` starts it through a launcher that exits at once, so the server is no
    process's child: the one that started it may end first (an xdist worker done before the
    others), and whoever stops it has nothing to reap."""

    url: str
    operator_token: str
    pid: int
    workdir: Path
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @classmethod
    def start(cls, *, detached: bool = False, timeout: float = START_TIMEOUT) -> ServerProcess:
        made = template()
        workdir = Path(tempfile.mkdtemp(prefix="frsync-sandbox-"))
        try:
            shutil.copyfile(made.database, workdir / DATABASE)
            for attempt in range(_BIND_ATTEMPTS):
                try:
                    return cls._spawn(workdir, made.operator_token, detached, timeout)
                except _PortTaken:
                    if attempt == _BIND_ATTEMPTS - 1:
                        raise SandboxError("no free port could be bound") from None
            raise AssertionError("unreachable")
        except BaseException:
            shutil.rmtree(workdir, ignore_errors=True)
            raise

    @classmethod
    def _spawn(
        cls, workdir: Path, operator_token: str, detached: bool, timeout: float
    ) -> ServerProcess:
        port = _free_port()
        # `frsync serve`, entered without building the other commands' parsers (see there).
        command = [sys.executable, "-m", "frsync.cli.server", "--sandbox", "--port", str(port)]
        if detached:
            command = [sys.executable, "-S", "-c", _LAUNCHER, *command]
        with (workdir / _LOG).open("wb") as log:
            process = subprocess.Popen(  # noqa: S603 (our own command line)
                command,
                env=server_environment(workdir / DATABASE),
                stdout=subprocess.PIPE if detached else log,
                stderr=log if detached else subprocess.STDOUT,
            )
        owned: subprocess.Popen[bytes] | None = process
        pid = process.pid
        if detached:  # the launcher says the server's pid and is gone
            pid, owned = int(process.communicate(timeout=timeout)[0]), None
        server = cls(f"http://127.0.0.1:{port}", operator_token, pid, workdir, owned)
        try:
            server._wait_until_ready(timeout)
        except BaseException:
            server._end_process()
            raise
        return server

    def _wait_until_ready(self, timeout: float) -> None:
        with httpx.Client(base_url=self.url, timeout=timeout) as http:
            wait_until(lambda: _answers(http), self._check_alive, timeout=timeout)

    def _check_alive(self) -> None:
        if self._process.poll() is None if self._process else is_server(self.pid):
            return
        output = (self.workdir / _LOG).read_text(errors="replace")
        if "address already in use" in output.lower():
            raise _PortTaken
        raise SandboxError(f"frsync serve --sandbox exited:\n{output[-2000:]}")

    def stop(self) -> None:
        """End the server (SIGTERM, then SIGKILL after a second) and remove its folder."""
        self._end_process()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def _end_process(self) -> None:
        if self._process is None:
            stop_server(self.pid, self.workdir)
        elif self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()


def wait_until(
    ready: Callable[[], bool],
    check: Callable[[], None],
    *,
    timeout: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Call `ready` until it says True: at once, then after 2 ms, 3 ms, … up to 50 ms apart.
    `check` raises to give up early (the server exited); past `timeout`, SandboxError."""
    deadline = clock() + timeout
    delay = FIRST_POLL
    while not ready():
        check()
        if clock() >= deadline:
            raise SandboxError(f"frsync serve --sandbox did not answer within {timeout:g} s")
        sleep(delay)
        delay = min(delay * POLL_GROWTH, LAST_POLL)


def _answers(http: httpx.Client) -> bool:
    try:
        return http.get("/healthz").status_code == 200
    except httpx.TransportError:
        return False


def stop_server(pid: int, workdir: Path) -> None:
    """Stop a sandbox server that another process started, by its pid, and remove its
    folder. Nothing is signalled unless that pid is still a `frsync serve` (pids are reused)."""
    if is_server(pid):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        while is_server(pid) and time.monotonic() < deadline:
            time.sleep(0.01)  # not our child: there is nothing to wait on but its pid
        if is_server(pid):
            os.kill(pid, signal.SIGKILL)
    shutil.rmtree(workdir, ignore_errors=True)


def is_server(pid: int) -> bool:
    """Alive (not a zombie) and, where /proc tells, running `frsync serve`."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False  # someone else's process: the pid was reused
    proc = Path(f"/proc/{pid}")
    if not proc.exists():
        return True  # no /proc here: the signal above is all there is to go on
    try:
        state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        command = (proc / "cmdline").read_bytes()
    except (OSError, IndexError):
        return False
    return state != "Z" and b"frsync" in command and b"serve" in command


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
