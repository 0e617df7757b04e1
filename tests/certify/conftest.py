"""A sandbox with a fast rate limit (20/s, burst 40) for the end-to-end certifications, so the
rate-limit scenario takes seconds, not the 80 s it takes at the real 2/s."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import free_port, wait_ready

FRSYNC = [sys.executable, "-m", "frsync"]


@dataclass(frozen=True)
class FastSandbox:
    url: str
    operator_token: str


@pytest.fixture(scope="module")
def fast_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastSandbox]:
    work = tmp_path_factory.mktemp("certify-sandbox")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRSYNC_")}
    env["FRSYNC_DATABASE_URL"] = f"sqlite:///{work / 'sandbox.db'}"
    subprocess.run([*FRSYNC, "demo"], env=env, check=True, capture_output=True, timeout=120)
    token = subprocess.run(
        [*FRSYNC, "token", "create", "--type", "operator"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout.strip()
    port = free_port()
    log = work / "serve.log"
    command = [*FRSYNC, "serve", "--sandbox", "--port", str(port), "--rate", "20", "--burst", "40"]
    with log.open("wb") as sink:
        server = subprocess.Popen(command, env=env, stdout=sink, stderr=sink)
    try:
        wait_ready(f"http://127.0.0.1:{port}")
        yield FastSandbox(f"http://127.0.0.1:{port}", token)
    finally:
        server.terminate()
        server.wait(timeout=20)
    assert "Traceback" not in log.read_text()


def examples() -> Path:
    return Path(__file__).parents[2] / "examples" / "connectors"
