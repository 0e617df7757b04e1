"""SQLite-only behaviour: another process's write lock is a bounded wait, then a 503."""

from __future__ import annotations

import shutil
import sqlite3
import time
from pathlib import Path

import httpx
import pytest

from frsync.config import Settings
from frsync.store.sqlite import path_from_url
from tests.conftest import client_for
from tests.support import TOKENS, make_settings, running_app

SYNC = "/fulfillment-requests/{}/accounting-sync"


@pytest.fixture
def settings(tmp_path: Path, sqlite_template: Path) -> Settings:
    """SQLite only, with a short busy timeout."""
    shutil.copyfile(sqlite_template, tmp_path / "frsync.db")
    return make_settings(tmp_path, store_busy_timeout=0.3)


async def test_write_lock_held_elsewhere_answers_503_then_the_write_succeeds(
    settings: Settings,
) -> None:
    async with running_app(settings) as app, client_for(app, TOKENS["account1"]) as api:
        assert (await api.get("/fulfillment-requests/221")).status_code == 200  # token cached
        other = sqlite3.connect(path_from_url(settings.database_url), isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")  # another process's writer
            started = time.monotonic()
            answer = await api.patch(SYNC.format(221), json={"externalAccountingId": "held"})
            elapsed = time.monotonic() - started
            readable = await api.get("/fulfillment-requests/221")  # WAL: readers go on
        finally:
            other.execute("ROLLBACK")
            other.close()
        _assert_busy(answer)
        assert 0.3 <= elapsed < 0.3 + 2.0  # slack for a machine at load 8
        assert readable.status_code == 200
        answer = await api.patch(SYNC.format(221), json={"externalAccountingId": "free"})
        assert answer.status_code == 204
        fr = (await api.get("/fulfillment-requests/221")).json()
        assert fr["externalAccountingId"] == "free"


def _assert_busy(answer: httpx.Response) -> None:
    assert answer.status_code == 503, answer.text
    assert answer.headers["Retry-After"] == "1"
    assert answer.headers["content-type"] == "application/problem+json"
