"""Fixtures of the security suite: a roomy rate limit, a database dumper, recording clients.

The families run on the `database_url` stores of tests/conftest.py (SQLite and PostgreSQL).
The per-token bucket is made large here so a matrix of hundreds of requests per token is
not cut short by 429s; the invalid-token limit keeps its default, and the guessing test
relies on it. Set FRSYNC_SECURITY_TALLY=path to get the counts as JSON at the end.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from frsync.config import Settings
from tests.openapi_check import check as check_against_openapi
from tests.security.dump import Dumper
from tests.security.tally import Recorder, dump_tally
from tests.support import make_settings

ROOMY_BUCKET = {"burst": 1_000_000, "rate": 1_000_000.0}


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url=database_url, **ROOMY_BUCKET)


@pytest.fixture
def store_name(database_url: str) -> str:
    return "sqlite" if database_url.startswith("sqlite") else "postgresql"


@pytest.fixture
async def dumper(app: Starlette, database_url: str) -> AsyncIterator[Dumper]:
    """Opened after `app`, so the fixture data is loaded."""
    dumper = await Dumper(database_url).open()
    yield dumper
    await dumper.close()


def recording_client(
    app: Starlette,
    recorder: Recorder,
    token: str | None = None,
    *,
    address: str = "127.0.0.1",
    conformance: bool = True,
) -> httpx.AsyncClient:
    """An in-process client whose every answer is counted and inspected by `recorder` and,
    unless told otherwise, checked against the OpenAPI document. `address` is the client
    address the app sees (the invalid-token limit is per address)."""

    async def conform(response: httpx.Response) -> None:
        await response.aread()
        check_against_openapi(response)

    hooks = [recorder.inspect, conform] if conformance else [recorder.inspect]
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=(address, 50000)),
        base_url="http://testserver",
        headers={"X-API-TOKEN": token} if token is not None else {},
        event_hooks={"response": hooks},
    )


def pytest_sessionfinish(session: pytest.Session) -> None:
    target = os.environ.get("FRSYNC_SECURITY_TALLY")
    if target:
        dump_tally(Path(target))
