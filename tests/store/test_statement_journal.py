"""The write process's connection keeps its statement journal in memory: a batch of PATCHes
inside a savepoint changes more pages than SQLite keeps in memory for it otherwise (64 KiB),
and the temporary file it spilled to cost a quarter of the write process's CPU."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from frsync.store.sqlite import connect

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def _deleted_files_open() -> int:
    """This process's open files that have no name left: SQLite's temporary files."""
    fds = Path("/proc/self/fd")
    return sum(
        1 for fd in fds.iterdir() if os.path.exists(fd) and os.readlink(fd).endswith("(deleted)")
    )


@pytest.mark.parametrize(("in_memory", "files_opened"), [(True, 0), (False, 1)])
def test_a_batch_in_a_savepoint_journals_in_memory_only_where_asked(
    tmp_path: Path, in_memory: bool, files_opened: int
) -> None:
    db = connect(str(tmp_path / "j.db"), "NORMAL", journal_in_memory=in_memory)
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)")
    db.executemany("INSERT INTO t VALUES (?, zeroblob(1000))", [(n,) for n in range(1000)])
    before = _deleted_files_open()
    db.execute("BEGIN IMMEDIATE")
    db.execute("SAVEPOINT batch")  # as the writer runs a batch (store/sqlite_writer.py)
    db.execute("UPDATE t SET v = zeroblob(1001)")  # some 250 pages: 1 MiB of journal
    during = _deleted_files_open()
    db.execute("RELEASE batch")
    db.execute("COMMIT")
    db.close()
    assert during - before == files_opened
