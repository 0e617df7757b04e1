"""SQLite on a full disk: writes answer 503 with Retry-After (no 500, no traceback), /readyz
answers 503 while writes fail, and both recover by themselves once there is room again."""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import client_for
from tests.support import TOKENS, make_settings, running_app

SYNC = "/fulfillment-requests/{}/accounting-sync"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MiB tmpfs of our own, so filling it disturbs nothing else."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("cannot mount a tmpfs here: no mount command")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount_point)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root and CAP_SYS_ADMIN): {done.stderr}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def _fill(directory: Path) -> Path:
    """Take every free byte of the file system."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        for size in (1 << 20, 1 << 12, 1):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError:
                continue
    finally:
        os.close(fd)
    return filler


async def test_a_full_disk_answers_503_and_not_ready_then_recovers_by_itself(
    small_disk: Path, sqlite_template: Path, caplog: pytest.LogCaptureFixture
) -> None:
    shutil.copyfile(sqlite_template, small_disk / "frsync.db")
    settings = make_settings(small_disk, burst=1000)
    async with (
        running_app(settings) as app,
        client_for(app, TOKENS["account1"]) as api,
        client_for(app) as anon,
    ):
        assert (
            await api.patch(SYNC.format(221), json={"accountingError": "before"})
        ).status_code == 204
        # An empty WAL: the next commit must allocate new blocks, as a long run does.
        check = sqlite3.connect(small_disk / "frsync.db", isolation_level=None)
        check.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        filler = _fill(small_disk)
        caplog.clear()
        answers = [
            await api.patch(SYNC.format(221), json={"accountingError": f"full {n}" * 50})
            for n in range(5)
        ]
        ready_while_full = await anon.get("/readyz")
        readable = await api.get("/fulfillment-requests/221")
        filler.unlink()
        ready_after = await anon.get("/readyz")
        after = await api.patch(SYNC.format(221), json={"accountingError": "after"})
        fr = (await api.get("/fulfillment-requests/221")).json()
        check.close()

    assert [a.status_code for a in answers] == [503] * 5, [a.text for a in answers]
    assert all(a.headers.get("Retry-After") == "1" for a in answers)
    assert all(a.headers["content-type"] == "application/problem+json" for a in answers)
    assert ready_while_full.status_code == 503
    assert ready_while_full.json()["store"] == "unavailable"
    assert readable.status_code == 200 and readable.json()["accountingError"] == "before"
    assert ready_after.status_code == 200
    assert after.status_code == 204 and fr["accountingError"] == "after"
    # One warning for the failing state, no traceback, no error from a second ROLLBACK.
    assert not [r for r in caplog.records if r.exc_info], [r.getMessage() for r in caplog.records]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not [r for r in caplog.records if "ROLLBACK" in r.getMessage()]
