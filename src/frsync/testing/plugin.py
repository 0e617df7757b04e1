"""The pytest plugin (entry point `pytest11`): `frsync_sandbox` and `frsync_tenant`, so a
connector's own test suite needs no conftest. Under pytest-xdist every worker of a run shares
one sandbox (see `_shared`); each test still gets a tenant of its own."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from frsync.testing import _shared
from frsync.testing.sandbox import Sandbox
from frsync.testing.tenant import Tenant


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
def frsync_sandbox(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Sandbox]:
    """A frsync sandbox for the whole session: the running one named by --frsync-url, else
    one started on a free port over a copy of the demo database — under pytest-xdist, one for
    all the workers of the run."""
    config = request.config
    url = config.getoption("frsync_url") or os.environ.get("FRSYNC_SANDBOX_URL")
    token = config.getoption("frsync_operator_token") or os.environ.get("FRSYNC_OPERATOR_TOKEN")
    worker = _worker(config)
    if url is None and worker is not None:
        root = tmp_path_factory.getbasetemp().parent  # shared by the run's workers
        url, token = _shared.acquire(root, worker["workerid"])
    with Sandbox(url, token) as sandbox:
        yield sandbox


@pytest.fixture
def frsync_tenant(frsync_sandbox: Sandbox) -> Iterator[Tenant]:
    """A fresh tenant for one test (10 FRs of 2 items): its own data, fault rules and journal,
    all removed after the test."""
    tenant = frsync_sandbox.new_tenant()
    yield tenant
    tenant.remove()


@pytest.hookimpl(trylast=True)  # after the session fixtures are torn down
def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    worker = _worker(config)
    if worker is not None:
        basetemp = config.getoption("basetemp")
        if basetemp:
            _shared.finish(Path(basetemp).resolve().parent, worker["workerid"], _count(worker))
    elif config.pluginmanager.hasplugin("dsession"):  # the xdist controller: after every worker
        factory = getattr(config, "_tmp_path_factory", None)  # where xdist puts the workers'
        if factory is not None:
            _shared.sweep(factory.getbasetemp())


def _worker(config: pytest.Config) -> dict[str, Any] | None:
    """xdist's description of this worker process, None when this is not one."""
    workerinput: dict[str, Any] | None = getattr(config, "workerinput", None)
    return workerinput


def _count(worker: dict[str, Any]) -> int:
    return int(worker.get("workercount", 1))
