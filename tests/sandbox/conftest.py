"""A sandbox-mode app on each store, and clients for the operator and the API tokens."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from frsync.config import Settings
from tests.support import OPERATOR_TOKEN, make_settings, running_app

SANDBOX_TABLES = (
    "sandbox_baseline_frs, sandbox_baseline_items, sandbox_state, sandbox_tenants,"
    " sandbox_faults, sandbox_journal"
)


@pytest.fixture
def sandbox_settings(tmp_path: Path, database_url: str) -> Settings:
    # database_url has emptied every table, these included (tests.support.reset_postgres).
    return make_settings(tmp_path, database_url=database_url, sandbox=True)


@pytest.fixture
async def sandbox_app(sandbox_settings: Settings) -> AsyncIterator[Starlette]:
    async with running_app(sandbox_settings) as app:
        yield app


Connect = Callable[..., httpx.AsyncClient]


@pytest.fixture
def connect(sandbox_app: Starlette) -> Connect:
    """connect(token) -> a client on the in-process sandbox app."""

    def make(token: str | None = None) -> httpx.AsyncClient:
        headers = {} if token is None else {"X-API-TOKEN": token}
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=sandbox_app), base_url="http://sandbox",
            headers=headers,
        )  # fmt: skip

    return make


@pytest.fixture
async def admin(connect: Connect) -> AsyncIterator[httpx.AsyncClient]:
    async with connect(OPERATOR_TOKEN) as client:
        yield client
