"""Interrupted pushes: Ctrl-C, a lost API, and two pushers on one token. No row lost or doubled."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import frsync
from frsync.client import Client, RetryPolicy
from frsync.push.runner import Outcome, PushResult, RowResult, StopReason
from frsync.push.session import execute, plan_push
from frsync.push.stopper import Stopper
from tests.client.helpers import TOKEN, run_cli, write_csv
from tests.support import free_port

FRS = [221, 222, 223, 224, 225, 226, 227, 228]


@pytest.fixture
def rows_file(tmp_path: Path) -> Path:
    return write_csv(tmp_path, *(f"{fr_id},true,QB-{fr_id},null," for fr_id in FRS))


def history_lengths(api: Client) -> list[int]:
    return [len(api.accounting_history(fr_id)) for fr_id in FRS]


def push(
    path: Path, client: Client, stopper: Stopper | None = None, **options: object
) -> PushResult:
    return execute(plan_push(path), client, stopper=stopper or Stopper(), **options)  # type: ignore[arg-type]


def test_resume_after_stop_sends_only_the_rest(rows_file: Path, api: Client) -> None:
    stopper = Stopper()
    succeeded: list[RowResult] = []

    def stop_after_three(result: RowResult) -> None:
        if result.outcome is Outcome.OK:
            succeeded.append(result)
        if len(succeeded) == 3:
            stopper.stop()  # as the Ctrl-C handler does

    first = push(rows_file, api, stopper, on_result=stop_after_three)
    assert first.stopped_by is StopReason.INTERRUPTED
    assert (first.count(Outcome.OK), first.count(Outcome.NOT_SENT)) == (3, 5)
    second = push(rows_file, api)
    assert (second.count(Outcome.SKIPPED), second.count(Outcome.OK)) == (3, 5)
    assert second.all_succeeded
    assert history_lengths(api) == [1] * len(FRS)  # each row applied exactly once


def test_unreachable_api_stops_the_run_and_a_rerun_resumes(rows_file: Path, api: Client) -> None:
    quick = RetryPolicy(max_retries=1, backoff_base=0.01)
    with Client(TOKEN, base_url=f"http://127.0.0.1:{free_port()}", retry=quick) as dead:
        result = push(rows_file, dead)
    assert result.stopped_by is StopReason.CONNECTION_ERROR
    assert [r.outcome for r in result.results[:2]] == [Outcome.FAILED, Outcome.NOT_SENT]
    assert push(rows_file, api).count(Outcome.OK) == len(FRS)


@pytest.mark.slow
def test_ctrl_c_finishes_the_request_in_flight(
    rows_file: Path, tcp_server: Callable[..., str], tmp_path: Path
) -> None:
    base_url = tcp_server(burst=1, rate=4.0)  # one row every quarter second
    report = tmp_path / "report.json"
    journal = tmp_path / "results.csv.journal"
    command = [
        sys.executable,
        "-c",
        "from frsync.cli import main; main()",
        "push",
        str(rows_file),
        "--token",
        TOKEN,
        "--base-url",
        base_url,
        "--report",
        str(report),
    ]
    env = {**os.environ, "PYTHONPATH": str(Path(frsync.__file__).parents[1])}
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (
        not journal.exists() or journal.read_text().count('"done"') < 2
    ):
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 1, stderr.decode()
    content = json.loads(report.read_text())
    done = journal.read_text().count('"done"')
    assert content["stoppedBy"] == "interrupted"
    assert content["summary"]["ok"] == done >= 2
    assert content["summary"]["notSent"] == len(FRS) - done
    with Client(TOKEN, base_url=base_url) as api:
        assert run_cli("push", rows_file, "--token", TOKEN, "--base-url", base_url) == 0
        assert history_lengths(api) == [1] * len(FRS)


@pytest.mark.slow
def test_two_pushers_sharing_a_token_both_finish(
    tcp_server: Callable[..., str], tmp_path: Path
) -> None:
    base_url = tcp_server(burst=4, rate=20.0)
    files = [
        write_csv(
            tmp_path, *(f"{fr_id},true,P{n}-{fr_id},," for fr_id in FRS * 2), name=f"p{n}.csv"
        )
        for n in (1, 2)
    ]
    results: list[PushResult] = []
    clients = [Client(TOKEN, base_url=base_url) for _ in files]

    def run(path: Path, client: Client) -> None:
        results.append(push(path, client))

    threads = [threading.Thread(target=run, args=pair) for pair in zip(files, clients, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert [result.all_succeeded for result in results] == [True, True]
    assert all(client.stats.retries >= client.stats.rate_limited for client in clients)
    for client in clients:
        client.close()
