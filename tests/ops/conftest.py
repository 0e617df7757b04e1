"""Running the server the way operators do: `frsync serve` processes, and uvicorn in a thread
with the guarded protocol, on free loopback ports."""

from __future__ import annotations

import asyncio
import copy
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import msgspec
import pytest

from frsync.config import Settings
from frsync.store import migrate
from tests.support import (
    BASIC_FIXTURE,
    TOKENS,
    free_port,
    load_fixture,
    require_redis,
    uvicorn_thread,
    wait_ready,
)

FRSYNC = [sys.executable, "-m", "frsync"]


def load_with_cli(env: dict[str, str], tmp_path: Path, fixture: dict[str, Any]) -> None:
    path = tmp_path / "fixture.json"
    path.write_bytes(msgspec.json.encode(fixture))
    loaded = subprocess.run([*FRSYNC, "load", str(path)], env=env, capture_output=True,
                            text=True, timeout=60)  # fmt: skip
    assert loaded.returncode == 0, loaded.stderr


class ServeProcess:
    """One `frsync serve` process; its combined output goes to a file (a full pipe stalls)."""

    def __init__(self, env: dict[str, str], log: Path, *args: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = log
        with log.open("wb") as sink:
            self.process = subprocess.Popen(
                [*FRSYNC, "serve", "--port", str(self.port), *args],
                env=env, stdout=sink, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def stop(self, timeout: float = 30) -> float:
        """SIGTERM, then the seconds it took to exit (0 exit status required)."""
        started = time.monotonic()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=timeout)
        # One worker: uvicorn re-raises SIGTERM after its clean shutdown (status -15), as
        # init systems expect; with --workers the supervisor exits 0.
        assert code in (0, -signal.SIGTERM), self.output()
        return time.monotonic() - started

    def output(self) -> str:
        return self.log.read_text()

    def check_log_is_clean(self, cut_off: int = 0) -> None:
        """No traceback but uvicorn's for each of `cut_off` requests cancelled at the end of
        the shutdown grace period; never a token."""
        output = self.output()
        assert output.count("Traceback") == cut_off, output
        assert output.count("timeout graceful shutdown exceeded") >= 2 * cut_off, output
        for token in TOKENS.values():
            assert token not in output


@contextmanager
def serve(
    tmp_path: Path, *args: str, name: str = "serve", **env_vars: str
) -> Iterator[ServeProcess]:
    """`frsync serve ARGS` on the database in env_vars (or a fresh SQLite one), ready."""
    server = ServeProcess(env_for(tmp_path, **env_vars), tmp_path / f"{name}.log", *args)
    try:
        wait_ready(server.base)
        yield server
    finally:
        if server.process.poll() is None:
            server.process.send_signal(signal.SIGTERM)
            server.process.wait(timeout=30)


def env_for(tmp_path: Path, **env_vars: str) -> dict[str, str]:
    env = {**os.environ, "FRSYNC_DATABASE_URL": f"sqlite:///{tmp_path / 'frsync.db'}"}
    env.update({f"FRSYNC_{k.upper()}": v for k, v in env_vars.items()})
    return env


@asynccontextmanager
async def guarded_server(settings: Settings) -> AsyncIterator[tuple[str, int]]:
    """uvicorn in a thread with frsync's guarded protocol; yields (host, port)."""
    await asyncio.to_thread(migrate, settings.database_url)
    await load_fixture(settings, BASIC_FIXTURE)
    with uvicorn_thread(settings, loop="asyncio") as port:
        yield "127.0.0.1", port


REDIS_URL = os.environ.get("FRSYNC_TEST_OPS_REDIS_URL", "redis://127.0.0.1:6379/12")


@pytest.fixture
def redis_url() -> str:
    """The Redis the process tests share buckets through; skip (or fail) when it is away."""
    return require_redis(REDIS_URL)


@pytest.fixture
def fresh_token() -> tuple[str, dict[str, Any]]:
    """A token no earlier run has used (its bucket in Redis starts full), and a fixture
    holding it for account 1."""
    token = f"tok-ops-{uuid.uuid4().hex}"
    fixture = copy.deepcopy(BASIC_FIXTURE)
    fixture["tokens"].append({"token": token, "type": "account", "id": 1})
    return token, fixture
