"""Redis faults against a real server: bounded latency, per-process limits, automatic return."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.faults import redis_faults as rf
from tests.faults.proxy import PROXY_LEAK
from tests.faults.redis_faults import RedisPhase, RedisRig

pytestmark = [
    pytest.mark.redis,
    pytest.mark.usefixtures("needs_redis"),
    pytest.mark.filterwarnings(PROXY_LEAK),
]


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory, needs_redis: None) -> Iterator[RedisRig]:
    with rf.redis_rig(tmp_path_factory.mktemp("redis-faults")) as rig:
        yield rig
        assert "Traceback" not in rig.server.log_text(), rig.server.log_text()[-4000:]


def _assert_clean(phase: RedisPhase) -> None:
    assert not any(s.startswith("5") or s == "no answer" for s in phase.statuses), phase
    assert phase.max_seconds <= phase.budget, phase
    assert phase.admitted <= phase.admit_bound, phase  # local buckets still limit
    assert phase.statuses["429"] > 0, phase
    assert phase.degraded_seen, "/readyz never said degraded"
    assert phase.recovery_seconds is not None, "workers did not go back to Redis"
    assert phase.shared_again, "the token's bucket is not in Redis after recovery"


def test_refused_redis_falls_back_and_returns(rig: RedisRig) -> None:
    _assert_clean(rf.refused(rig))


def test_blackholed_redis_costs_at_most_its_timeout(rig: RedisRig) -> None:
    _assert_clean(rf.blackholed(rig))


def test_slow_redis_costs_at_most_its_timeout(rig: RedisRig) -> None:
    _assert_clean(rf.slow(rig))


def test_redis_reset_mid_run_is_absorbed(rig: RedisRig) -> None:
    _assert_clean(rf.reset_mid_run(rig))


def test_flapping_redis_never_fails_a_request(rig: RedisRig) -> None:
    _assert_clean(rf.flapping(rig))
