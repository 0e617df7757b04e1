"""Fixtures: the same behaviour tests run on every store backend, through the real HTTP stack.

PostgreSQL runs when reachable at FRSYNC_TEST_POSTGRES_URL (a fresh database is created for
the run); otherwise those cases are skipped and the summary says so. FRSYNC_REQUIRE_SERVICES=1
(as in CI) turns "unreachable" into a failure instead of a skip.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from hypothesis import settings as hypothesis_settings
from starlette.applications import Starlette

from frsync.config import Settings
from frsync.store import migrate
from tests.openapi_check import check as check_against_openapi
from tests.support import (
    TOKENS,
    ManualClock,
    make_settings,
    reset_postgres,
    run_sql,
    running_app,
)

POSTGRES_URL = os.environ.get(
    "FRSYNC_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
REQUIRE_SERVICES = os.environ.get("FRSYNC_REQUIRE_SERVICES") == "1"
# The core tables (some tests empty just these); database_url empties every table. TRUNCATE
# fires no trigger: the kept counts (store/schema.py) are emptied by name.
TABLES = "accounting_history, fulfillment_request_items, fulfillment_requests, fulfillment_request_counts, api_tokens, sources, channels, accounts"
_skipped_backends: dict[str, str] = {}

# Generated tests (Hypothesis, schemathesis): `make test` runs them derandomized, so one commit
# always gets one verdict; `make fuzz` loads the exploring profile with a random seed and ten
# times the examples (tests scale their counts with tests.support.examples).
hypothesis_settings.register_profile(
    "frsync-ci", derandomize=True, database=None, deadline=None, print_blob=True
)
hypothesis_settings.register_profile(
    "frsync-fuzz",
    derandomize=False,
    database=None,
    deadline=None,
    print_blob=True,
    max_examples=10 * hypothesis_settings.default.max_examples,
)
hypothesis_settings.load_profile("frsync-ci")  # `--hypothesis-profile` overrides it


def _unavailable(what: str, why: str) -> None:
    _skipped_backends[what] = why
    if REQUIRE_SERVICES:
        pytest.fail(f"{what} is required (FRSYNC_REQUIRE_SERVICES=1) but {why}")
    pytest.skip(f"{what} not reachable: {why}")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Migrate once; each test gets a copy (a migration per test would cost ~100 ms)."""
    path = tmp_path_factory.mktemp("template") / "frsync.db"
    migrate(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh, migrated database for this run, dropped at the end."""
    name = f"frsync_test_{uuid.uuid4().hex[:10]}"
    try:
        asyncio.run(run_sql(POSTGRES_URL, f'CREATE DATABASE "{name}"'))
    except (TimeoutError, OSError, ImportError) as error:
        _unavailable("PostgreSQL", f"{type(error).__name__}: {error}")
    except Exception as error:  # asyncpg's own errors (auth, missing database…)
        _unavailable("PostgreSQL", f"{type(error).__name__}: {error}")
    url = POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"
    migrate(url)
    yield url
    asyncio.run(run_sql(POSTGRES_URL, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


# Marked, so that `-m "not postgres"` leaves the PostgreSQL cases out at collection.
@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    if request.param == "sqlite":
        path = tmp_path / "frsync.db"
        shutil.copyfile(sqlite_template, path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("postgres_url")
    asyncio.run(reset_postgres(url))  # every table, the sandbox's and the console's too
    return url


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url=database_url)


@pytest.fixture
def clock() -> ManualClock:
    """The app's clock. Standing still, it makes every rate limit and cache of the app a
    matter of counts, not of how fast this machine runs the test; a test moves it to see
    buckets refill or cache entries expire."""
    return ManualClock()


@pytest.fixture
async def app(settings: Settings, clock: ManualClock) -> AsyncIterator[Starlette]:
    async with running_app(settings, clock=clock) as app:
        yield app


async def _conformance(response: httpx.Response) -> None:
    await response.aread()
    check_against_openapi(response)


def client_for(app: Starlette, token: str | None = None, **headers: str) -> httpx.AsyncClient:
    """An HTTP client on the in-process app; every answer is checked against the OpenAPI doc."""
    if token is not None:
        headers["X-API-TOKEN"] = token
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://testserver",
        headers=headers,
        event_hooks={"response": [_conformance]},
    )


@pytest.fixture
async def api(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """Client with the account-1 token."""
    async with client_for(app, TOKENS["account1"]) as client:
        yield client


@pytest.fixture
async def anon(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app) as client:
        yield client


@pytest.fixture(scope="session")
def generation_seed(pytestconfig: pytest.Config) -> int:
    """The seed for generators that take one (schemathesis' own runner): `--hypothesis-seed`
    under `make fuzz`, else a fixed one."""
    seed = pytestconfig.getoption("hypothesis_seed", None)
    return int(seed) if seed is not None else 0


def _uses_generators(module: ModuleType | None) -> bool:
    names = (
        getattr(v, "__module__", None) or getattr(v, "__name__", "")
        for v in vars(module or {}).values()
    )
    return any(str(name).startswith(("hypothesis", "schemathesis")) for name in names)


# Fixtures that hand out the Redis at FRSYNC_TEST_REDIS_URL (tests/ratelimit). tests/ops and
# tests/faults use databases of their own (FRSYNC_TEST_OPS_REDIS_URL, FRSYNC_FAULTS_REDIS_URL),
# under keys no other test shares, and never reset them.
REDIS_FIXTURES = {"redis_stores", "redis_proxy"}
OWN_REDIS = ("tests/ops/", "tests/faults/")


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that asks for the PostgreSQL database is a `postgres` test, marked or not; a
    test that uses Hypothesis or schemathesis (in its module, or through `generation_seed`)
    is `generated` (`make fuzz` runs those)."""
    # Slow tests first: under pytest-xdist a long test started last would keep one worker
    # busy after the others are done.
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if "postgres_url" in fixtures:
            item.add_marker(pytest.mark.postgres)
        shares_redis = fixtures & REDIS_FIXTURES or item.get_closest_marker("redis")
        if shares_redis and not item.nodeid.startswith(OWN_REDIS):
            # A sandbox reset empties every bucket in its Redis database: under pytest-xdist
            # (`--dist loadgroup`) the tests that share that database run on one worker.
            item.add_marker(pytest.mark.xdist_group("redis"))
        if "generation_seed" in fixtures or _uses_generators(getattr(item, "module", None)):
            item.add_marker(pytest.mark.generated)


def pytest_report_header(config: pytest.Config) -> list[str]:
    profile = hypothesis_settings.get_current_profile_name()
    seed = config.getoption("hypothesis_seed", None)
    current = hypothesis_settings.default
    line = (
        f"frsync generated tests: hypothesis profile {profile!r} (derandomize="
        f"{current.derandomize}, max_examples={current.max_examples}, database=None), "
    )
    if profile == "frsync-fuzz" and seed is not None:
        return [line + f"seed {seed} (rerun: make fuzz SEED={seed})"]
    return [line + f"schemathesis --seed {seed if seed is not None else 0}"]


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    seed = config.getoption("hypothesis_seed", None)
    if seed is not None and terminalreporter.stats.get("failed"):
        terminalreporter.write_line(
            f"NOTE: this run's seed was {seed}: `make fuzz SEED={seed}` (or pytest"
            f" --hypothesis-profile=frsync-fuzz --hypothesis-seed={seed}) repeats it",
            red=True,
            bold=True,
        )
    for what, why in _skipped_backends.items():
        terminalreporter.write_line(
            f"NOTE: {what} tests were SKIPPED ({why})", yellow=True, bold=True
        )
