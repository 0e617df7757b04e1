"""Run the connector: its own process group, the tenant in its environment, a time limit.

At the limit the whole process group is killed (a connector's children too), so a hung
connector fails its scenario instead of hanging the certification.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
from dataclasses import dataclass

OUTPUT_TAIL = 4000  # characters of the connector's output kept for the report


@dataclass(frozen=True)
class Finished:
    exit_code: int | None  # None: killed at the time limit
    timed_out: bool
    output: str  # the last OUTPUT_TAIL characters of stdout and stderr, interleaved


def connector_env(base_url: str, token: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(FRSYNC_BASE_URL=base_url, FRSYNC_TOKEN=token)
    env["FRSYNC_TOKEN_TYPE"] = "account"  # noqa: S105 (the kind of token, not a secret)
    return env


def run_connector(argv: list[str], env: dict[str, str], timeout_s: float) -> Finished:
    with tempfile.TemporaryFile() as output:
        try:
            process = subprocess.Popen(  # noqa: S603 (the user's own command, by design)
                argv, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
            )
        except OSError as error:
            return Finished(127, False, f"cannot start {argv[0]!r}: {error.strerror}")
        timed_out = False
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
        _kill_group(process.pid)  # also whatever the connector left running
        process.wait()
        output.seek(0, os.SEEK_END)
        output.seek(max(0, output.tell() - OUTPUT_TAIL))
        tail = output.read().decode("utf-8", "replace")
    return Finished(None if timed_out else process.returncode, timed_out, tail)


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):  # the group is gone
        os.killpg(pid, signal.SIGKILL)
