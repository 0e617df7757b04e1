"""What `frsync push` tells its user while it runs: why it waits, and an ETA that knows the pace."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import frsync
from frsync.client import APIConnectionError, Client, Problem, ServerError
from frsync.push.display import _estimate, paced_eta, retry_notice
from tests.client.helpers import TOKEN, write_csv
from tests.support import free_port


def test_eta_counts_the_rows_the_bucket_still_has_to_let_through() -> None:
    # 47 of 60 rows sent, the burst spent, 2 req/s: 13 rows take 6.5 s, not the 1 s that the
    # rate measured over the burst would promise.
    assert paced_eta(13, level=0.0, rate=2.0, seconds_per_row=0.01) == 6.5


def test_eta_is_the_round_trips_when_the_bucket_has_room() -> None:
    assert paced_eta(10, level=40.0, rate=2.0, seconds_per_row=0.05) == pytest.approx(0.5)
    assert paced_eta(0, level=0.0, rate=2.0, seconds_per_row=1.0) == 0.0


def test_the_bar_reads_the_pace_from_the_clients_bucket() -> None:
    now = [1000.0]
    with Client("tok-test-token-0000000000", clock=lambda: now[0]) as client:
        bucket = client.bucket
        assert bucket is not None
        for _ in range(40):  # the burst is spent
            ticket = bucket.reserve()
            assert bucket.poll(ticket) == 0.0
            bucket.settle(ticket)
        assert _estimate(client, 13, seconds_per_row=0.01) == pytest.approx(6.5)
        now[0] += 5.0  # ten requests' worth refilled
        assert _estimate(client, 13, seconds_per_row=0.01) == pytest.approx(1.5)


def test_retry_notice_names_the_wait_and_the_cause() -> None:
    refused = APIConnectionError("ConnectError: [Errno 111] Connection refused")
    assert retry_notice(refused, 4.2) == "retrying in 4 s: connection refused"
    slow = APIConnectionError("ReadTimeout")
    assert retry_notice(slow, 8.0) == "retrying in 8 s: no answer in time"
    busy = ServerError("busy", status=503, problem=Problem(title="Service Unavailable"))
    assert retry_notice(busy, 0.25) == "retrying in 0.2 s: 503 Service Unavailable"


@pytest.mark.slow
def test_push_says_it_is_retrying_while_the_api_is_unreachable(tmp_path: Path) -> None:
    rows = write_csv(tmp_path, "221,true,QB-221,null,")
    log = tmp_path / "push.log"
    command = [
        sys.executable,
        "-m",
        "frsync",
        "push",
        str(rows),
        "--token",
        TOKEN,
        "--base-url",
        f"http://127.0.0.1:{free_port()}",
    ]
    env = {**os.environ, "PYTHONPATH": str(Path(frsync.__file__).parents[1]), "COLUMNS": "200"}
    with log.open("wb") as sink:
        process = subprocess.Popen(command, env=env, stdout=sink, stderr=sink)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and log.read_text().count("retrying in") < 2:
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGINT)  # stops the wait; the row is not sent
        process.wait(timeout=20)
    output = log.read_text()
    assert re.search(r"retrying in \d+(\.\d)? s: connection refused", output), output
    assert process.returncode == 1, output
    assert "Traceback" not in output
