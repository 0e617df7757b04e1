"""Fault scenarios need the real PostgreSQL and Redis servers; without them they skip (or
fail, with FRSYNC_REQUIRE_SERVICES=1, as in CI)."""

from __future__ import annotations

import functools
import os

import pytest

from tests.faults.harness import REDIS_URL, postgres_available
from tests.support import require_redis


def _unavailable(what: str, why: str) -> None:
    if os.environ.get("FRSYNC_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{what} is required (FRSYNC_REQUIRE_SERVICES=1) but {why}", pytrace=False)
    pytest.skip(f"{what} not reachable: {why}")


@functools.cache
def _postgres_problem() -> str | None:
    return postgres_available()


@pytest.fixture(scope="session")
def needs_postgres() -> None:
    why = _postgres_problem()
    if why is not None:
        _unavailable("PostgreSQL", why)


@pytest.fixture(scope="session")
def needs_redis() -> None:
    require_redis(REDIS_URL)
