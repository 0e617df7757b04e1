"""kill -9 mid-write on both stores: nothing torn, no acknowledged write lost, SQLite sound."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from frsync.store import migrate
from tests.faults.harness import Attempt, Dataset, marker_body, verify
from tests.faults.kill9 import run_kill9
from tests.support import make_settings, serve_over_tcp

# Each iteration restarts two workers (~2-3 s on a shared two-core machine): four per store
# keep each test near 20 s; `python -m bench.faults_report --full` runs a hundred.
CI_ITERATIONS = 4


def test_sqlite_survives_kill_9_mid_write(tmp_path: Path) -> None:
    result = run_kill9("sqlite", CI_ITERATIONS, tmp_path)
    assert result.iterations == CI_ITERATIONS
    assert result.acknowledged > 0
    assert (result.torn, result.unknown, result.missing, result.stale) == (0, 0, 0, 0), result
    assert result.integrity_failures == 0
    assert result.other_statuses == {} and result.tracebacks == 0, result


@pytest.mark.postgres
@pytest.mark.usefixtures("needs_postgres")
def test_postgres_survives_kill_9_mid_write(tmp_path: Path) -> None:
    result = run_kill9("postgres", CI_ITERATIONS, tmp_path)
    assert result.iterations == CI_ITERATIONS
    assert result.acknowledged > 0
    assert (result.torn, result.unknown, result.missing, result.stale) == (0, 0, 0, 0), result
    assert result.other_statuses == {} and result.tracebacks == 0, result


def test_the_check_sees_a_torn_fr_and_a_lost_acknowledgement(tmp_path: Path) -> None:
    """The verifier is not vacuous: a mixed-marker FR and a 204 without history are caught."""
    dataset = Dataset(accounts=1, frs_per_account=2)
    fr, other = dataset.fr_ids(1)
    token = dataset.token(1)
    settings = make_settings(tmp_path)
    migrate(settings.database_url)
    with serve_over_tcp(settings, dataset.fixture()) as base:
        torn = marker_body("A", dataset.items(fr))
        torn["accountingError"] = "B"
        headers = {"X-API-TOKEN": token}
        answer = httpx.patch(f"{base}/fulfillment-requests/{fr}/accounting-sync", json=torn,
                             headers=headers)  # fmt: skip
        assert answer.status_code == 204
        now = time.monotonic()
        attempts = [
            Attempt(fr, "A", 204, answer.headers["x-request-id"], None, now, 0.0),
            Attempt(fr, "B", None, None, None, now, 0.0),
            Attempt(other, "C", 204, "not-a-request-id", None, now, 0.0),
        ]
        verdict = verify(base, token, dataset, [fr, other], attempts)
    assert (verdict.torn, verdict.missing, verdict.acknowledged) == (1, 1, 2)
    assert not verdict.ok
