"""The SQLite write process of `frsync serve` (store/sqlite_write_process.py): the workers'
PATCHes go through it and answer exactly as a worker's own writer would; killed with SIGKILL
under load, it costs no 500 and no acknowledged write, and the workers write themselves."""

from __future__ import annotations

import os
import re
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from frsync.supervisor import shared_memory_dir
from tests.faults.harness import (
    Dataset,
    MarkerWriters,
    ServerProcess,
    integrity_check,
    marker_body,
    prepare_database,
    verify,
)
from tests.support import wait_for

READY = re.compile(r"SQLite write process ready \(pid (\d+)\)")
ROUTED = "SQLite PATCHes go to the write process"
ON_ITS_OWN = "this worker writes its PATCHes itself"
TOO_LONG = "too long for a Unix socket"
STOPPED = re.compile(r"SQLite write process stopped \(writes: \d+, transactions: \d+\)")
GENEROUS = 30.0  # seconds, for a loaded two-core machine


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[ServerProcess, Dataset]]:
    dataset = Dataset(accounts=1, frs_per_account=12)
    url = f"sqlite:///{tmp_path / 'frsync.db'}"
    prepare_database(url, dataset)
    server = ServerProcess(tmp_path, {"FRSYNC_DATABASE_URL": url},
                           "--burst", "1000000", "--rate", "1000000")  # fmt: skip
    server.start()
    try:
        wait_for(lambda: READY.search(server.log_text()), "the write process is ready", GENEROUS)
        yield server, dataset
    finally:
        server.stop()
    assert integrity_check(tmp_path / "frsync.db") == "ok"


def test_patches_go_through_the_write_process_and_answer_as_ever(
    served: tuple[ServerProcess, Dataset],
) -> None:
    server, dataset = served
    fr = dataset.fr_ids(1)[0]
    items = dataset.items(fr)
    headers = {"X-API-TOKEN": dataset.token(1)}
    with httpx.Client(base_url=server.base, headers=headers, timeout=GENEROUS) as client:
        path = f"/fulfillment-requests/{fr}/accounting-sync"
        applied = client.patch(path, json=marker_body("via-writer", items))
        assert applied.status_code == 204, applied.text
        missing = client.patch("/fulfillment-requests/999999/accounting-sync", json={})
        assert missing.status_code == 404, missing.text
        foreign = client.patch(path, json={"items": [{"id": 999999}]})
        assert foreign.status_code == 400, foreign.text
        assert foreign.json()["errors"] == [
            {"field": "items[0].id", "message": "Item 999999 is not an item of this request."}
        ]
        state = client.get(f"/fulfillment-requests/{fr}").json()
        history = client.get(f"{path}/history").json()
    assert state["externalAccountingId"] == "via-writer"
    assert [entry["requestId"] for entry in history] == [applied.headers["x-request-id"]]
    log = server.log_text()
    assert ROUTED in log and ON_ITS_OWN not in log, log[-3000:]


def test_a_killed_write_process_costs_no_500_and_loses_no_acknowledged_write(
    served: tuple[ServerProcess, Dataset],
) -> None:
    server, dataset = served
    frs = dataset.fr_ids(1)[:8]
    with MarkerWriters(server.base, dataset.token(1), frs, dataset, threads=4,
                       timeout=GENEROUS, label="k") as writers:  # fmt: skip
        wait_for(lambda: writers.successes_after(0.0), "a first 204", GENEROUS)
        (pid,) = READY.findall(server.log_text())
        os.kill(int(pid), signal.SIGKILL)
        killed = time.monotonic()
        wait_for(lambda: ON_ITS_OWN in server.log_text(), "the workers notice", GENEROUS)
        noticed = time.monotonic()
        wait_for(lambda: writers.successes_after(noticed), "204s after that", GENEROUS)
    statuses = {attempt.status for attempt in writers.attempts}
    assert statuses <= {204, 503}, statuses
    assert all(a.retry_after for a in writers.attempts if a.status == 503)
    assert writers.successes_after(killed)
    verdict = verify(server.base, dataset.token(1), dataset, frs, writers.attempts)
    assert verdict.ok and verdict.acknowledged > 0, verdict
    assert "Traceback" not in server.log_text(), server.log_text()[-4000:]


def test_a_deep_temporary_directory_does_not_cost_the_write_process(tmp_path: Path) -> None:
    """A Unix socket's path may not pass 107 bytes: under a deep TMPDIR (a test's folder) the
    write process once died at start with a traceback. It now lives in /dev/shm, or, where
    there is none, is left out with a warning; PATCHes are applied either way."""
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    dataset = Dataset(accounts=1, frs_per_account=2)
    url = f"sqlite:///{tmp_path / 'frsync.db'}"
    prepare_database(url, dataset)
    server = ServerProcess(tmp_path, {"FRSYNC_DATABASE_URL": url, "TMPDIR": str(deep)},
                           workers=1)  # fmt: skip
    server.start()
    try:
        # Its start or its absence is logged; a PATCH sent before either is applied by the
        # worker itself, which would prove nothing here.
        def decided() -> bool:
            log = server.log_text()
            return bool(READY.search(log)) or TOO_LONG in log

        wait_for(decided, "the write process is ready or left out", GENEROUS)
        fr = dataset.fr_ids(1)[0]
        with httpx.Client(base_url=server.base, timeout=GENEROUS) as client:
            answer = client.patch(f"/fulfillment-requests/{fr}/accounting-sync",
                                  headers={"X-API-TOKEN": dataset.token(1)},
                                  json=marker_body("deep", dataset.items(fr)))  # fmt: skip
        assert answer.status_code == 204, answer.text
    finally:
        server.stop()
    log = server.log_text()
    assert "Traceback" not in log, log[-3000:]
    assert ON_ITS_OWN not in log, log[-3000:]  # the write process, or none at all


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_stops_the_write_process_and_leaves_no_directory(
    tmp_path: Path, workers: int
) -> None:
    """SIGTERM's default action runs no `finally`, and uvicorn raises it again once a single
    worker has shut down: a 1-worker `serve` once died there, its write process killed by
    the kernel and its socket's directory left behind. It still ends by SIGTERM."""
    dataset = Dataset(accounts=1, frs_per_account=2)
    url = f"sqlite:///{tmp_path / 'frsync.db'}"
    prepare_database(url, dataset)
    server = ServerProcess(tmp_path, {"FRSYNC_DATABASE_URL": url}, workers=workers)
    server.start()
    try:
        wait_for(lambda: READY.search(server.log_text()), "the write process is ready", GENEROUS)
        assert server.process is not None
        pid = server.process.pid
        made = list(
            Path(shared_memory_dir() or tempfile.gettempdir()).glob(f"frsync-write-{pid}-*")
        )
        assert len(made) == 1, made
    finally:
        code = server.stop()
    assert code in (0, -signal.SIGTERM), code
    log = server.log_text()
    assert STOPPED.search(log), log[-3000:]
    assert not made[0].exists()
