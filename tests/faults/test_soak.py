"""A short soak (the report runs ten minutes): steady mixed traffic on PostgreSQL + Redis."""

from __future__ import annotations

from pathlib import Path

import pytest

from frsync.config import Settings
from tests.faults.soak import run_soak

REDIS_POOL = 32  # frsync.ratelimit.redis.RedisStore's max_connections


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.usefixtures("needs_postgres", "needs_redis")
def test_short_soak_has_no_5xx_and_no_fd_leak(tmp_path: Path) -> None:
    result = run_soak(tmp_path, 20, window=5, sample_every=2, burst_every=7)
    assert result.server_errors == 0 and result.unexpected == 0, result.statuses
    assert result.kinds["valid"] and result.kinds["foreign"] and result.kinds["invalid"]
    assert result.samples, "no RSS/fd sample was taken"
    assert result.lingering_clients == 0, "the server kept connections its clients had closed"
    _, fd_growth = result.drift()
    # Twenty seconds is still warm-up for the pools, which open connections on demand: a
    # worker may legitimately grow by its whole PostgreSQL pool and Redis pool. A leak of one
    # descriptor per request (thousands of requests here) would be far past this.
    pools = Settings().pool_size + REDIS_POOL
    assert fd_growth <= pools, result.samples[-1]
