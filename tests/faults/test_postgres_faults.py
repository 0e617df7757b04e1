"""PostgreSQL faults under load, played by a proxy: 503 + Retry-After, bounded, nothing lost."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults import postgres_faults as pg
from tests.faults.postgres_faults import PhaseResult, PostgresRig
from tests.faults.proxy import PROXY_LEAK

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.usefixtures("needs_postgres"),
    pytest.mark.filterwarnings(PROXY_LEAK),
]


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory, needs_postgres: None) -> Iterator[PostgresRig]:
    with pg.postgres_rig(tmp_path_factory.mktemp("pg-faults")) as rig:
        yield rig
        assert "Traceback" not in rig.server.log_text(), rig.server.log_text()[-4000:]


def _assert_clean(result: PhaseResult) -> None:
    assert result.bad == 0, result.statuses  # only 204, or 503 with Retry-After
    assert result.max_seconds <= result.budget, result
    assert result.verdict.ok and result.verdict.acknowledged > 0, result.verdict
    assert result.recovery_seconds is not None, "no success after the fault was lifted"


def test_terminated_backends_answer_503_and_lose_nothing(rig: PostgresRig) -> None:
    _assert_clean(pg.terminate_backends(rig))


def test_outage_answers_503_quickly_and_recovers_by_itself(rig: PostgresRig) -> None:
    result = pg.outage(rig, 3.0)
    _assert_clean(result)
    assert result.statuses["503"] > 0
    assert result.recovery_seconds is not None and result.recovery_seconds < 5


def test_blackholed_database_never_holds_a_request_past_its_budget(rig: PostgresRig) -> None:
    _assert_clean(pg.blackhole(rig, 2.0))


def test_added_latency_slows_writes_but_fails_none(tmp_path: Path, needs_postgres: None) -> None:
    with pg.latency_rig(tmp_path) as rig:
        result = pg.latency(rig, 0.05, 2.0)
        assert "Traceback" not in rig.server.log_text(), rig.server.log_text()[-4000:]
    _assert_clean(result)
    assert set(result.statuses) == {"204"}
    # The fault was really played: a PATCH sent through it waited at least one delayed
    # chunk each way (a lower bound, so a slow machine cannot break it).
    assert result.max_seconds >= 2 * 0.05, result


def test_exhausted_pool_answers_503_within_the_timeouts(rig: PostgresRig) -> None:
    result = pg.pool_exhaustion(rig)
    assert result.statuses == {"503": result.requests}, result.statuses
    assert result.bad == 0 and result.max_seconds <= result.budget, result
    assert result.verdict.ok and result.recovery_seconds is not None, result
