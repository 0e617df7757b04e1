"""WAL checkpoints off the request path, and a WAL that starts over before it grows large.

By default SQLite checkpoints on the commit that takes the WAL past 1,000 pages: that commit
copies pages into the database file and fsyncs it, milliseconds during which the writer
holds the write lock, and every write waiting for its next batch waits too. So the store's
connections checkpoint only as a backstop for a much larger WAL, and a background thread
checkpoints every `interval` on a connection of its own. PASSIVE mode never waits for
writers or readers, and sqlite3 releases the GIL while it works, so the event loop and the
writer keep going meanwhile.

A PASSIVE checkpoint every `interval` does not bound the WAL under steady writes: SQLite
starts the WAL over only when a write transaction begins after *every* frame has been
copied, and a checkpoint that copies for milliseconds beside the writers always leaves the
commits made meanwhile. The WAL then grew to the backstop, and the commit that crossed it
copied and fsynced all that was left: 13–58 ms with the write lock held, every two seconds
at 1,000 PATCH/s (issue 20's p99). So once the WAL passes `restart_pages` the thread
checkpoints again at once, up to CATCH_UP_ROUNDS times: each round copies only what was
committed during the one before, so the rounds shorten until one leaves nothing and the next
write starts the WAL over. No round waits for or takes the write lock. (A RESTART checkpoint
does take it, and holds it through its copy and fsyncs: tried, the writes waited for the
lock past 8 ms three to five times as often.) When writes come back to back (a saturating
load) no round catches up, and the rounds only cost CPU and fsyncs: after a series that did
not start the WAL over, the thread leaves the next BACK_OFF intervals to the backstop.

On Linux the thread runs as a batch thread (SCHED_BATCH): when it wakes (every round, and
after each fsync) it does not preempt the processes that answer requests, yet it keeps its
fair share of the CPU, so it cannot fall behind under load. At 1,000 PATCH/s the write
process's statements were slowed past 1 ms by preemption 29–43 times in 10 s with the thread
at the default; giving way to them cut that to 5–26, and the p99 fell (BENCHMARKS.md, the
tail at 1,000 PATCH/s). A niceness of 10 did as well there, but starved the thread once both
cores were busy: the WAL then grows to the backstop.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import sys
import threading

log = logging.getLogger("frsync.store")

# Pages (4 KiB each) past which a commit checkpoints by itself: only if this thread falls
# behind, e.g. while a bulk load holds the write lock.
BACKSTOP_PAGES = 16_384
# Past this many pages in the WAL, a round checkpoints up to CATCH_UP_ROUNDS times more.
RESTART_PAGES = 4_096
CATCH_UP_ROUNDS = 20
BACK_OFF = 5  # intervals without catch-up rounds after a series that did not catch up


class Checkpointer:
    def __init__(
        self, path: str, interval: float = 0.2, restart_pages: int = RESTART_PAGES
    ) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run,
            args=(path, interval, restart_pages),
            name="frsync-wal-checkpoint",
            daemon=True,
        )
        self._thread.start()

    def _run(self, path: str, interval: float, restart_pages: int) -> None:
        _as_batch_thread()
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        try:
            backing_off = 0
            while not self._stop.wait(interval):
                try:
                    if _checkpoint(db) < restart_pages:
                        continue
                    if backing_off:
                        backing_off -= 1
                    elif not _caught_up(db, restart_pages):
                        backing_off = BACK_OFF
                except sqlite3.Error as error:  # busy now; the next round catches up
                    log.debug("WAL checkpoint skipped: %s", error)
        finally:
            db.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def _caught_up(db: sqlite3.Connection, restart_pages: int) -> bool:
    """Checkpoint again until the WAL has started over (True), at most CATCH_UP_ROUNDS times."""
    return any(_checkpoint(db) < restart_pages for _ in range(CATCH_UP_ROUNDS))


def _checkpoint(db: sqlite3.Connection) -> int:
    """A PASSIVE checkpoint; the pages in the WAL when it ran (-1: not in WAL mode)."""
    _busy, pages, _copied = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    return int(pages)


def _as_batch_thread() -> None:
    # On Linux a thread has a policy of its own, set through its thread id; elsewhere the
    # same call would change the whole process (or another one), so it is left alone.
    if sys.platform == "linux":
        try:
            os.sched_setscheduler(threading.get_native_id(), os.SCHED_BATCH, os.sched_param(0))
        except OSError as error:  # a sandbox may forbid it: the thread only yields less
            log.debug("WAL checkpoint thread keeps its scheduling policy: %s", error)
