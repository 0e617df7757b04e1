"""SQLite's writes, on one thread per process with a connection of its own, committed in groups.

Why a thread: taking the write lock can wait (another process holds it: a second worker, a
`frsync load`), and a wait on the event loop freezes every request of the process, health
checks included. Here only the writes that need the lock wait; the loop awaits a future.

Why groups: a transaction costs its BEGIN (the lock), its COMMIT (the WAL frames of every
page it touched, index pages included) and a thread handoff each way. The jobs that queue up
while one transaction runs are applied together in the next one, each inside its own
SAVEPOINT, so a job that raises rolls back alone and gets its own answer. Jobs of a kind that
can apply many at once in a few statements (`run_batch`: the PATCH, store/sqlite_sync.py)
share one savepoint, and run one by one only if it fails. Every job is
answered only after the COMMIT that holds it, so kill -9 loses nothing acknowledged (WAL with
synchronous=NORMAL: a commit survives the death of the process, as before).

Deadlines: a job that has not started within the busy timeout of its submission answers
StoreBusy at that moment, whether it waited for another process's lock or behind a long
batch of this one; a job that has started always runs to its commit (or its rollback).

Inline (`threaded=False`): the same batches, applied on the event loop's own thread, for a
process that does nothing but write (store/sqlite_write_process.py). There a thread would
only add a handoff and a GIL to share each way: measured, the thread cost that process half
its gain. Jobs submitted in one turn of the loop are applied together in the next.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import queue
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from itertools import groupby, repeat
from typing import Any, Protocol

from frsync.errors import StoreBusy

log = logging.getLogger("frsync.store")

# A batch holds at most this many jobs: the lock is held, and the first job's answer waits,
# for the whole batch. 64 PATCHes are about 3 ms of work.
MAX_BATCH = 64

# A kind of job that applies many of its jobs at once (store/sqlite_sync.py, the PATCH): its
# work objects have `run_batch(db, works)`, answering (applied, value or error) for each.
Outcome = tuple[bool, Any]
RunBatch = Callable[[sqlite3.Connection, list[Any]], list[Outcome]]

_PENDING, _RUNNING, _CANCELLED = 0, 1, 2
SQLITE_BUSY = 5
# The disk is full or failing: the write did not happen, SQLite rolled it back itself.
DISK_CODES = frozenset({10, 13})  # SQLITE_IOERR, SQLITE_FULL
# Result codes that mean "the database cannot be used right now", as opposed to a bug:
# BUSY, LOCKED, IOERR, FULL, CANTOPEN, PROTOCOL.
TRANSIENT_CODES = frozenset({SQLITE_BUSY, 6, 10, 13, 14, 15})


def primary_code(error: BaseException) -> int:
    """The primary result code of a sqlite3 error (extended codes carry it in the low byte)."""
    return int(getattr(error, "sqlite_errorcode", 0)) & 0xFF


def is_transient(error: BaseException) -> bool:
    """A locked, missing, unreadable or full database: 'try again later' (StoreBusy), not a
    bug, wherever the write ran."""
    return isinstance(error, sqlite3.OperationalError) and primary_code(error) in TRANSIENT_CODES


class Promise(Protocol):
    """What a job's outcome is given to: an asyncio future (`Writer.run`), or anything with
    the same three methods (`Writer.submit`)."""

    def done(self) -> bool: ...
    def set_result(self, value: Any, /) -> None: ...
    def set_exception(self, error: BaseException, /) -> None: ...


class _Job:
    __slots__ = ("foreign_keys", "loop", "promise", "state", "work")

    def __init__(
        self,
        work: Callable[[sqlite3.Connection], Any],
        loop: asyncio.AbstractEventLoop,
        promise: Promise,
        foreign_keys: bool,
    ) -> None:
        self.work = work
        self.loop = loop
        self.promise = promise
        self.state = _PENDING
        self.foreign_keys = foreign_keys


class Writer:
    """The process's writer thread (or, inline, the loop's turns) and its connection (opened
    by the caller, owned here)."""

    def __init__(self, db: sqlite3.Connection, busy_timeout: float, *, threaded: bool = True):
        self._db = db
        self._busy_timeout = busy_timeout
        # Jobs come in through a C queue (a put is cheap and wakes the thread at once); the
        # thread moves them to `_waiting`, its own. A job's state changes under `_state_lock`.
        self._inbox: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._waiting: deque[_Job] = deque()
        self._state_lock = threading.Lock()
        self._closing = False
        self._stopping = False  # the thread has seen the end of the inbox
        self.failing = False
        self.transactions = 0  # committed, and the jobs they held: the batches' mean size
        self.jobs = 0
        self._thread: threading.Thread | None = None
        self._drain_scheduled = False
        if threaded:
            self._thread = threading.Thread(
                target=self._run, name="frsync-sqlite-writer", daemon=True
            )
            self._thread.start()

    # --- the event loop's side -------------------------------------------------------------

    async def run(self, work: Callable[[sqlite3.Connection], Any], foreign_keys: bool) -> Any:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        job = self._submit(work, foreign_keys, loop, future)
        timer = loop.call_at(loop.time() + self._busy_timeout, self._expire, job)
        try:
            return await future
        except asyncio.CancelledError:
            self._claim(job, _CANCELLED)  # never started: it never will
            raise
        finally:
            timer.cancel()

    def submit(
        self, work: Callable[[sqlite3.Connection], Any], foreign_keys: bool, promise: Promise
    ) -> None:
        """Inline only, on the loop: `work` is applied on a later turn, and `promise` given
        its outcome after the COMMIT that holds it. No task, future or timer per job (they
        cost the write process 7% of its CPU per PATCH): inline, every job queued by then is
        applied on the next turn, and a lock that does not come is given up after the busy
        timeout, so no job needs a deadline of its own."""
        assert self._thread is None, "submit is for an inline writer"
        self._submit(work, foreign_keys, asyncio.get_running_loop(), promise)

    def _submit(
        self,
        work: Callable[[sqlite3.Connection], Any],
        foreign_keys: bool,
        loop: asyncio.AbstractEventLoop,
        promise: Promise,
    ) -> _Job:
        if self._closing:
            raise StoreBusy("The server is shutting down; try again shortly.")
        job = _Job(work, loop, promise, foreign_keys)
        self._inbox.put(job)
        if self._thread is None and not self._drain_scheduled:
            self._drain_scheduled = True
            loop.call_soon(self._drain)  # after the other jobs of this turn are submitted
        return job

    def _expire(self, job: _Job) -> None:
        # Not started within the busy timeout: answer now rather than after the wait.
        if self._claim(job, _CANCELLED) and not job.promise.done():
            job.promise.set_exception(StoreBusy())

    def _claim(self, job: _Job, state: int) -> bool:
        with self._state_lock:
            if job.state != _PENDING:
                return False
            job.state = state
            return True

    def close(self) -> None:
        """Blocking: finish every job already submitted, then stop. Call from a thread (or,
        inline, from the loop)."""
        self._closing = True
        if self._thread is None:
            self._drain()
            self._db.close()
            return
        self._inbox.put(None)  # after every job submitted before
        self._thread.join()

    def _drain(self) -> None:
        """Inline: apply every job submitted so far, in batches, on this thread."""
        self._drain_scheduled = False
        self._gather()
        while self._waiting:
            self._run_batch_guarded()
            self._gather()

    # --- the writer thread -----------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._serve()
        finally:
            self._db.close()
            log.debug("SQLite writer: %d jobs in %d transactions", self.jobs, self.transactions)

    def _serve(self) -> None:
        while True:
            if not self._waiting:
                if self._stopping:
                    return
                self._receive(self._inbox.get())
            self._gather()
            self._run_batch_guarded()

    def _run_batch_guarded(self) -> None:
        try:
            self._run_batch()
        except BaseException:  # a bug here must not leave requests waiting forever
            log.exception("SQLite writer failed")
            self._rollback_quietly()

    def _receive(self, job: _Job | None) -> None:
        if job is None:
            self._stopping = True
        else:
            self._waiting.append(job)

    def _gather(self) -> None:
        """Move what the inbox holds to `_waiting`, without waiting, and drop the jobs that
        were cancelled or expired meanwhile."""
        while True:
            try:
                self._receive(self._inbox.get_nowait())
            except queue.Empty:
                break
        while self._waiting and self._waiting[0].state == _CANCELLED:
            self._waiting.popleft()

    def _run_batch(self) -> None:
        # A job that needs foreign keys off (a bulk load) gets a transaction of its own, and
        # the pragma must be set before BEGIN: inside a transaction it does nothing.
        head = next((job for job in self._waiting if job.state == _PENDING), None)
        unchecked = head is not None and not head.foreign_keys
        if unchecked:
            self._db.execute("PRAGMA foreign_keys=OFF")
        try:
            if self._lock():
                self._commit(self._take_batch(unchecked))
        finally:
            if unchecked:
                self._db.execute("PRAGMA foreign_keys=ON")

    def _commit(self, batch: list[_Job]) -> None:
        """Apply `batch` in the transaction `_lock` began, and answer every job once the
        COMMIT is done. Consecutive jobs of a kind that applies many at once (`run_batch`)
        go together, in one savepoint; every other job (and each of such a group whose
        statement failed) in a savepoint of its own, none for a batch of one."""
        if not batch:
            self._db.execute("ROLLBACK")
            return
        outcomes: list[tuple[_Job, bool, Any]] = []
        single = len(batch) == 1
        try:
            for run_batch, group in _groups(batch):
                if run_batch and len(group) > 1 and self._together(run_batch, group, outcomes):
                    continue
                for job in group:
                    if not self._apply_alone(job, single, outcomes):
                        return  # a batch of one that failed: rolled back and answered
            self._db.execute("COMMIT")
            self.transactions += 1
            self.jobs += len(batch)
        except BaseException as error:
            # The transaction is lost, and with it every job of the batch.
            if isinstance(error, sqlite3.Error):
                self._failed(error)
            self._rollback_quietly()
            self._settle(list(zip(batch, repeat(False), _for_each(error, len(batch)))))
            return
        self.failing = False
        self._settle(outcomes)

    def _together(
        self, run_batch: RunBatch, group: list[_Job], outcomes: list[tuple[_Job, bool, Any]]
    ) -> bool:
        """The group's jobs in one call of their kind's `run_batch`, which answers for each
        (a refused job writes nothing); False, with nothing applied, when that call raised."""
        self._db.execute("SAVEPOINT jobs")
        try:
            answers = run_batch(self._db, [job.work for job in group])
        except Exception as error:
            if self._transaction_lost(error):
                raise
            self._db.execute("ROLLBACK TO jobs")
            self._db.execute("RELEASE jobs")
            return False
        self._db.execute("RELEASE jobs")
        outcomes.extend((job, ok, value) for job, (ok, value) in zip(group, answers, strict=True))
        return True

    def _apply_alone(self, job: _Job, single: bool, outcomes: list[tuple[_Job, bool, Any]]) -> bool:
        """`job` in a savepoint of its own (none when it is the whole batch); False when it
        was the whole batch and failed: then it is rolled back and answered already."""
        if not single:
            self._db.execute("SAVEPOINT job")
        try:
            value = job.work(self._db)
        except BaseException as error:
            if self._transaction_lost(error):
                raise
            if single:
                self._db.execute("ROLLBACK")
                self._settle([(job, False, error)])
                return False
            self._db.execute("ROLLBACK TO job")
            self._db.execute("RELEASE job")
            outcomes.append((job, False, error))
            return True
        if not single:
            self._db.execute("RELEASE job")
        outcomes.append((job, True, value))
        return True

    def _transaction_lost(self, error: BaseException) -> bool:
        """After `error` in a job: note a failing disk; True when SQLite rolled the whole
        transaction back itself (then no savepoint is left to roll back to)."""
        if isinstance(error, sqlite3.Error):
            self._failed(error)
        return not self._db.in_transaction

    def _lock(self) -> bool:
        """BEGIN IMMEDIATE, polling from 25 µs up to 1 ms while another process holds the
        lock (SQLite's own busy handler sleeps 1, 2, 5… ms, far longer than a PATCH holds
        it). Gives up when no job is left waiting: the loop answers each one at its deadline.
        Inline, the loop cannot answer while this waits: it gives up after the busy timeout
        and answers the waiting jobs StoreBusy itself."""
        delay = 25e-6
        give_up = time.monotonic() + self._busy_timeout
        while True:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                return True
            except sqlite3.OperationalError as error:
                if primary_code(error) != SQLITE_BUSY:
                    self._fail_pending(error)
                    return False
            self._gather()
            if not any(job.state == _PENDING for job in self._waiting):
                self._waiting.clear()
                return False
            if self._thread is None and time.monotonic() > give_up:
                self._fail_pending(StoreBusy())
                return False
            time.sleep(delay)
            delay = min(delay * 2, 1e-3)

    def _take_batch(self, unchecked: bool) -> list[_Job]:
        """Up to MAX_BATCH waiting jobs; with `unchecked` (foreign keys are off) only the one
        job that asked for it, if it is still waiting."""
        self._gather()  # what arrived while the lock was being taken joins this batch
        batch: list[_Job] = []
        with self._state_lock:
            while self._waiting and len(batch) < MAX_BATCH:
                job = self._waiting[0]
                if job.state == _CANCELLED:
                    self._waiting.popleft()
                    continue
                if unchecked != (not job.foreign_keys) and (unchecked or batch):
                    break  # a bulk load waits for a transaction of its own, and vice versa
                self._waiting.popleft()
                job.state = _RUNNING
                batch.append(job)
                if unchecked:
                    break
        return batch

    def _fail_pending(self, error: BaseException) -> None:
        self._gather()
        with self._state_lock:
            jobs = [job for job in self._waiting if job.state == _PENDING]
            for job in jobs:
                job.state = _RUNNING
            self._waiting.clear()
        self._settle(list(zip(jobs, repeat(False), _for_each(error, len(jobs)))))

    def _failed(self, error: sqlite3.Error) -> None:
        if primary_code(error) in DISK_CODES:
            if not self.failing:
                log.warning("SQLite write failed (%s): writes answer 503 until one succeeds", error)
            self.failing = True

    def _rollback_quietly(self) -> None:
        # After SQLITE_FULL or an I/O error SQLite has usually rolled back already: a second
        # ROLLBACK would only raise "no transaction is active".
        if self._db.in_transaction:
            try:
                self._db.execute("ROLLBACK")
            except sqlite3.Error as error:
                log.warning("SQLite ROLLBACK failed: %s", error)

    def _settle(self, outcomes: list[tuple[_Job, bool, Any]]) -> None:
        if self._thread is None:  # inline: this is the loop's own thread
            _resolve(outcomes)
            return
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Job, bool, Any]]] = {}
        for outcome in outcomes:
            by_loop.setdefault(outcome[0].loop, []).append(outcome)
        for loop, some in by_loop.items():
            # A closed loop: nobody is waiting for these any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_resolve, some)


def _groups(batch: list[_Job]) -> Iterator[tuple[RunBatch | None, list[_Job]]]:
    """Runs of consecutive jobs whose work has the same `run_batch` (None: each runs alone)."""
    for run_batch, group in groupby(batch, key=lambda job: getattr(job.work, "run_batch", None)):
        yield run_batch, list(group)


def _for_each(error: BaseException, jobs: int) -> list[BaseException]:
    """The answers for the jobs of a lost batch, one exception object each (one object
    raised in several tasks would collect every task's traceback): StoreBusy when the disk
    or the lock is to blame, else the error itself for the first job and copies of it (same
    class, arguments and SQLite error code) for the others."""
    if is_transient(error):
        return [StoreBusy() for _ in range(jobs)]
    return [error, *(copy.copy(error) for _ in range(jobs - 1))]


def _resolve(outcomes: list[tuple[_Job, bool, Any]]) -> None:
    for job, ok, value in outcomes:
        if job.promise.done():  # cancelled or expired meanwhile
            continue
        if ok:
            job.promise.set_result(value)
        else:
            job.promise.set_exception(value)
