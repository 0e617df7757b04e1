"""The pytest plugin (entry point `pytest11`): `frsync_sandbox` and `frsync_tenant`, so a
connector's own test suite needs no conftest."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from frsync.testing.sandbox import Sandbox, Tenant


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("frsync", "frsync sandbox")
    group.addoption(
        "--frsync-url",
        help="use the frsync sandbox running at this URL ($FRSYNC_SANDBOX_URL) instead of"
        " starting one",
    )
    group.addoption(
        "--frsync-operator-token",
        help="that sandbox's operator token ($FRSYNC_OPERATOR_TOKEN)",
    )


@pytest.fixture(scope="session")
def frsync_sandbox(request: pytest.FixtureRequest) -> Iterator[Sandbox]:
    """A frsync sandbox for the whole session: started on a free port over a fresh SQLite
    file with the demo data, or the running one named by --frsync-url."""
    url = request.config.getoption("frsync_url") or os.environ.get("FRSYNC_SANDBOX_URL")
    token = request.config.getoption("frsync_operator_token") or os.environ.get(
        "FRSYNC_OPERATOR_TOKEN"
    )
    with Sandbox(url, token) as sandbox:
        yield sandbox


@pytest.fixture
def frsync_tenant(frsync_sandbox: Sandbox) -> Iterator[Tenant]:
    """A fresh, isolated tenant for one test (10 FRs of 2 items), removed after it."""
    tenant = frsync_sandbox.new_tenant()
    yield tenant
    tenant.remove()
