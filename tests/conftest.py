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
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from frsync.config import Settings
from frsync.store import migrate
from tests.openapi_check import check as check_against_openapi
from tests.support import TOKENS, make_settings, run_sql, running_app

POSTGRES_URL = os.environ.get(
    "FRSYNC_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
REQUIRE_SERVICES = os.environ.get("FRSYNC_REQUIRE_SERVICES") == "1"
TABLES = "accounting_history, fulfillment_request_items, fulfillment_requests, api_tokens, sources, channels, accounts"
_skipped_backends: dict[str, str] = {}


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
    asyncio.run(run_sql(url, f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE"))
    return url


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url=database_url)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Starlette]:
    async with running_app(settings) as app:
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


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that asks for the PostgreSQL database is a `postgres` test, marked or not."""
    for item in items:
        if "postgres_url" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.postgres)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for what, why in _skipped_backends.items():
        terminalreporter.write_line(
            f"NOTE: {what} tests were SKIPPED ({why})", yellow=True, bold=True
        )
