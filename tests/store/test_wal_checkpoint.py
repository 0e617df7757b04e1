"""The WAL checkpoint thread (store/sqlite_checkpoint.py): under steady writes the WAL starts
over, instead of growing until a commit checkpoints it with the write lock held."""

from __future__ import annotations

import os
import random
import sqlite3
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from frsync.store import sqlite_checkpoint
from frsync.store.sqlite_checkpoint import Checkpointer
from tests.support import holds_within


@contextmanager
def steady_writes(path: Path) -> Iterator[None]:
    """A commit of some twenty pages about every millisecond, none checkpointing itself: a
    PASSIVE checkpoint of what a 20 ms interval gathers takes longer than the gap between two
    commits, as at 1,000 PATCH/s."""
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA wal_autocheckpoint=0")
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, k INTEGER, v BLOB)")
    db.execute("CREATE INDEX ix_t_k ON t (k)")
    stop = threading.Event()

    def write() -> None:
        while not stop.is_set():
            db.execute("BEGIN IMMEDIATE")
            db.executemany(
                "INSERT INTO t (k, v) VALUES (?, zeroblob(3000))",
                [(random.randrange(1 << 30),) for _ in range(16)],
            )
            db.execute("COMMIT")
            time.sleep(0.001)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        yield
    finally:
        stop.set()
        writer.join()
        db.close()


def wal_restarts(path: Path) -> int:
    """The WAL header's checkpoint sequence number: SQLite adds one each time the WAL starts
    over (its first frame after the restart rewrites the header)."""
    with open(f"{path}-wal", "rb") as wal:
        return int.from_bytes(wal.read(16)[12:16], "big")


def test_the_wal_starts_over_under_steady_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without the catch-up rounds (CATCH_UP_ROUNDS = 0) these writes never let it start
    # over: seen 0 times in 10 s, the WAL past 16,000 pages. The back-off after a series
    # that failed only spaces the series out: off here, so a loaded machine (where many
    # fail) still sees a restart soon.
    monkeypatch.setattr(sqlite_checkpoint, "BACK_OFF", 0)
    path = tmp_path / "wal.db"
    with steady_writes(path):
        before = wal_restarts(path)
        checkpointer = Checkpointer(str(path), interval=0.02, restart_pages=256)
        try:
            # At once on a quiet machine; 0.3-19 s in six runs with eight busy loops on two cores.
            restarted = holds_within(lambda: wal_restarts(path) > before, 120)
        finally:
            checkpointer.stop()
    assert restarted


@pytest.mark.skipif(sys.platform != "linux", reason="a thread's own policy is Linux's")
def test_the_checkpoint_thread_gives_way_to_the_requests(tmp_path: Path) -> None:
    checkpointer = Checkpointer(str(tmp_path / "x.db"), interval=0.01)
    try:
        thread = next(t for t in threading.enumerate() if t.name == "frsync-wal-checkpoint")
        assert thread.native_id is not None
        native_id = thread.native_id
        assert holds_within(lambda: os.sched_getscheduler(native_id) == os.SCHED_BATCH, 10)
    finally:
        checkpointer.stop()
