"""WAL checkpoints off the request path.

By default SQLite checkpoints on the commit that takes the WAL past 1,000 pages: that commit
copies pages into the database file and fsyncs it, milliseconds during which the writer
thread (store/sqlite_writer.py) holds the write lock, and every write waiting for its next
batch waits too. So the store's connections checkpoint only as a backstop for a much larger
WAL, and a background thread checkpoints every `interval` on a connection of its own.
PASSIVE mode never waits for writers or readers, and sqlite3 releases the GIL while it
works, so the event loop and the writer keep going meanwhile.
"""

from __future__ import annotations

import logging
import sqlite3
import threading

log = logging.getLogger("frsync.store")

# Pages (4 KiB each) past which a commit checkpoints by itself: only if this thread falls
# behind, e.g. while a bulk load holds the write lock.
BACKSTOP_PAGES = 16_384


class Checkpointer:
    def __init__(self, path: str, interval: float = 0.2) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(path, interval), name="frsync-wal-checkpoint", daemon=True
        )
        self._thread.start()

    def _run(self, path: str, interval: float) -> None:
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        try:
            while not self._stop.wait(interval):
                try:
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as error:  # busy now; the next round catches up
                    log.debug("WAL checkpoint skipped: %s", error)
        finally:
            db.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
