"""`frsync certify`'s usage errors (exit 2, a clear message) and the connector's time limit."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from frsync.certify.process import run_connector
from frsync.certify.run import as_argv, scenario_names
from tests.support import free_port

FRSYNC = [sys.executable, "-m", "frsync", "certify"]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--scenario", "nope", "--", "true"], "unknown scenario nope"),
        ([], "no command to certify"),
        (["--"], "no command to certify"),
        (["--sandbox-url", "http://127.0.0.1:1", "--", "true"], "needs --operator-token"),
        (["--operator-token", "t", "--", "true"], "needs --sandbox-url"),
        (
            ["--timeout", "0", "--sandbox-url", "http://x", "--operator-token", "t", "--", "true"],
            "--timeout must be",
        ),
    ],
)
def test_usage_errors_exit_2_saying_why(arguments: list[str], message: str) -> None:
    done = subprocess.run([*FRSYNC, *arguments], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert message in done.stderr


def test_an_unreachable_sandbox_is_a_usage_error() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    command = [*FRSYNC, "--sandbox-url", url, "--operator-token", "t", "--", "true"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert f"cannot reach the sandbox at {url}" in done.stderr


def test_scenario_names_and_commands() -> None:
    assert scenario_names(["idempotence", "baseline"]) == ["baseline", "idempotence"]
    assert as_argv("python -m my.connector --since 'last week'") == [
        "python", "-m", "my.connector", "--since", "last week",
    ]  # fmt: skip
    with pytest.raises(ValueError, match="no command"):
        as_argv([])


def test_a_hung_connector_is_killed_with_its_children(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    script = f"sleep 300 & echo $! > {pid_file}; echo started; wait"
    finished = run_connector(["sh", "-c", script], dict(os.environ), timeout_s=1.0)
    assert finished.timed_out and finished.exit_code is None
    assert "started" in finished.output
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and _alive(child):
        time.sleep(0.05)
    assert not _alive(child), "the connector's child outlived the time limit"


def test_a_connector_that_cannot_start_fails_its_run() -> None:
    finished = run_connector(["/nonexistent/connector"], dict(os.environ), timeout_s=5)
    assert finished.exit_code == 127 and "cannot start" in finished.output


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/stat")
    return not (status.exists() and status.read_text().split()[2] == "Z")  # a zombie is dead
