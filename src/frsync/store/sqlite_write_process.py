"""One process writes every worker's PATCHes to SQLite: `frsync serve` starts it beside the
workers, and each worker's store sends it its PATCHes over a Unix socket.

Why: a worker's writer thread shares the worker's GIL with its event loop, and every SQLite
step hands the GIL over and waits to win it back; with several workers each commit also
empties the other workers' page caches and the write lock passes between processes. Here
the PATCHes of every worker are applied by one process that does nothing else, inline on
its own loop (the same `Writer` batches and `SyncAccounting` statements as a worker's
thread), so it never hands a GIL to anyone. Measured off/on in back-to-back pairs
(BENCHMARKS.md, issue 20): PATCH/s ×1.17–1.18 with 1 worker and ×1.13–1.17 with 2; the p99
under saturating load rose in five pairs of six (more requests wait in its batches).

The PATCH comes here, and so do the statements a worker writes every few seconds (the
console's usage counts, through `SqliteStore.write_statements`). On the worker's writer
thread they held the write lock while that thread won the GIL back from its busy loop
between steps, and every PATCH waited: at 1,000 PATCH/s, with no counts written at all the
server's p99 was 0.7-2.7 ms shorter (three pairs). Every other write (tokens, loads, the
sandbox) stays on the worker's own writer thread, and SQLite's lock keeps the two apart as
it keeps any two writers apart. A worker that cannot reach this process (not started yet,
stopped, crashed) writes itself and tries again a second later: this process makes writes
faster, never possible. Each answer is sent after its batch's COMMIT, so kill -9 of any
process loses nothing acknowledged; a PATCH whose answer is lost with its connection
answers 503, and sending it again is safe (PATCH is idempotent by value).

The wire: each message is a 4-byte big-endian length and a msgpack array, a `_Job` or
`_Statements` one way and a `_Done` the other. The socket lives in a private (0700)
directory of `serve`'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import signal
import sqlite3
import struct
from collections.abc import Awaitable, Callable, Iterator
from typing import cast

import msgspec

from frsync.domain import AccountingPatch, AccountingPlan, Principal
from frsync.errors import FieldError, InvalidItems, InvalidRequest, NotFound, StoreBusy
from frsync.store.base import Audit
from frsync.store.sqlite_sync import SyncAccounting
from frsync.store.sqlite_writer import Writer, is_transient

log = logging.getLogger("frsync.store")

_LENGTH = struct.Struct("!I")
MAX_MESSAGE = 4 << 20  # a PATCH body is at most 1 MiB; anything longer is not ours
# POSIX only, as Unix sockets and uvloop are: `serve` starts no write process on Windows.
STOP_SIGNAL = getattr(signal, "SIGUSR1", signal.SIGTERM)
RETRY_SECONDS = 1.0  # after failing to reach this process, a worker writes itself this long
# Past the busy timeout (after which this process answers StoreBusy itself) a worker waits
# this much longer for an answer, in case this process hangs.
_ANSWER_MARGIN = 5.0


# A parameter of a statement sent to this process (msgspec decodes no union of str and bytes).
Param = int | float | str | None


class _Job(msgspec.Struct, array_like=True, tag=0):
    """A PATCH."""

    id: int
    fr_id: int
    principal: Principal
    patch: AccountingPatch
    now: int
    audit: Audit


class _Statements(msgspec.Struct, array_like=True, tag=1):
    id: int
    statements: list[tuple[str, list[Param]]]


class Statements:
    """Statements run in order, all in one transaction (a write job of the `Writer`'s)."""

    __slots__ = ("statements",)

    def __init__(self, statements: list[tuple[str, list[Param]]]) -> None:
        self.statements = statements

    def __call__(self, db: sqlite3.Connection) -> None:
        for statement, params in self.statements:
            db.execute(statement, params)


class _Done(msgspec.Struct, array_like=True):
    id: int
    error: str = ""  # "" applied; else one of _ERRORS, or "unexpected"
    detail: str = ""
    errors: list[FieldError] = []


# The errors a PATCH answers on purpose, sent by name and raised again in the worker.
_ERRORS: dict[str, type[NotFound | InvalidRequest | StoreBusy]] = {
    cls.__name__: cls for cls in (NotFound, InvalidItems, InvalidRequest, StoreBusy)
}
_encode = msgspec.msgpack.Encoder().encode
_decode_job = msgspec.msgpack.Decoder(_Job | _Statements).decode
_decode_done = msgspec.msgpack.Decoder(_Done).decode


def _framed(message: msgspec.Struct) -> bytes:
    body = _encode(message)
    return _LENGTH.pack(len(body)) + body


class _Frames:
    """Bytes in, whole messages out."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> Iterator[bytes]:
        self._buffer += data
        while len(self._buffer) >= _LENGTH.size:
            (length,) = _LENGTH.unpack_from(self._buffer)
            if length > MAX_MESSAGE:
                raise ValueError(f"a message of {length} bytes")
            end = _LENGTH.size + length
            if len(self._buffer) < end:
                return
            message = bytes(self._buffer[_LENGTH.size : end])
            del self._buffer[:end]
            yield message


class _Outbox:
    """The messages of one turn of the loop, sent in one write, both ways: a write per
    message cost its sender a system call each, and its receiver a wake-up. Messages whose
    connection is gone by then are dropped: its owner has answered for them (`_lost`)."""

    def __init__(self, transport: Callable[[], asyncio.Transport | None]) -> None:
        self._transport = transport
        self._frames: list[bytes] = []

    def put(self, message: msgspec.Struct) -> None:
        if not self._frames:
            asyncio.get_running_loop().call_soon(self._flush)
        self._frames.append(_framed(message))

    def clear(self) -> None:
        self._frames.clear()

    def _flush(self) -> None:
        frames, self._frames = self._frames, []
        transport = self._transport()
        if frames and transport is not None and not transport.is_closing():
            transport.write(b"".join(frames))


# --- the write process ------------------------------------------------------------------------


def _answer(job_id: int, error: BaseException | None) -> _Done:
    if error is None:
        return _Done(job_id)
    if is_transient(error):  # as the worker's own store answers it: 503, not a failure
        error = StoreBusy()
    name = type(error).__name__
    if name not in _ERRORS:
        log.error("a write failed in the write process", exc_info=error)
        return _Done(job_id, "unexpected")
    assert isinstance(error, NotFound | InvalidRequest | StoreBusy)
    return _Done(job_id, name, error.detail, getattr(error, "errors", []))


class _Worker(asyncio.Protocol):
    """One worker's connection: its jobs to the writer, the answers back."""

    def __init__(self, writer: Writer) -> None:
        self._writer = writer
        self._frames = _Frames()
        self._transport: asyncio.Transport | None = None
        self._answers = _Outbox(lambda: self._transport)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        try:
            jobs = [_decode_job(message) for message in self._frames.feed(data)]
        except (ValueError, msgspec.DecodeError) as error:
            log.error("write process: dropping a connection that sent garbage (%s)", error)
            if self._transport is not None:
                self._transport.abort()
            return
        for job in jobs:
            reply = _Reply(self._answers, job.id)
            try:
                self._writer.submit(_work(job), True, reply)
            except StoreBusy as error:  # stopping: the worker may send it again
                reply.set_exception(error)

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None  # its jobs still run to their commit; their answers go nowhere


def _work(job: _Job | _Statements) -> SyncAccounting | Statements:
    if isinstance(job, _Statements):
        return Statements(job.statements)
    return SyncAccounting(job.fr_id, AccountingPlan(job.principal, job.patch, job.now), job.audit)


class _Reply:
    """Where the writer puts a job's outcome (the `Promise` of `Writer.submit`): its answer,
    sent on the connection the job came in on."""

    __slots__ = ("_answers", "_job_id")

    def __init__(self, answers: _Outbox, job_id: int) -> None:
        self._answers, self._job_id = answers, job_id

    def done(self) -> bool:
        return False  # answered once, by the writer

    def set_result(self, value: object, /) -> None:
        self._answers.put(_answer(self._job_id, None))

    def set_exception(self, error: BaseException, /) -> None:
        self._answers.put(_answer(self._job_id, error))


async def serve(writer: Writer, socket_path: str) -> None:
    """The write process's work: apply the PATCHes that come in on `socket_path` with
    `writer` (inline), until STOP_SIGNAL; then what was submitted is applied and answered."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(STOP_SIGNAL, stop.set)
    server = await loop.create_unix_server(lambda: _Worker(writer), path=socket_path)
    log.info("SQLite write process ready (pid %d)", os.getpid())
    try:
        await stop.wait()
    finally:
        server.close()
        writer.close()  # applies and answers every job submitted
        await asyncio.sleep(0)  # the last answers, to any worker still there, go out
        log.info("SQLite write process stopped (writes: %d, transactions: %d)",
                 writer.jobs, writer.transactions)  # fmt: skip


# --- a worker's side --------------------------------------------------------------------------


class WriteProcess:
    """A worker's connection to the write process, opened on first use."""

    def __init__(self, socket_path: str, busy_timeout: float) -> None:
        self._socket_path = socket_path
        self._answer_timeout = busy_timeout + _ANSWER_MARGIN
        self._ids = itertools.count()
        self._waiting: dict[int, asyncio.Future[_Done]] = {}
        self._transport: asyncio.Transport | None = None
        self._jobs = _Outbox(lambda: self._transport)
        self._opening: asyncio.Future[bool] | None = None
        self._retry_at = float("-inf")
        self._warned = False
        self._closed = False

    def sync_accounting(self, fr_id: int, plan: AccountingPlan, audit: Audit) -> Awaitable[bool]:
        """Applied (or refused, raising the same error the worker's own writer would), True;
        False when the write process cannot be reached: then the caller writes it itself.
        (Not a coroutine of its own: `_send`'s, one frame less per PATCH.)"""
        return self._send(_Job(0, fr_id, plan.principal, plan.patch, plan.now, audit))

    def write(self, statements: Statements) -> Awaitable[bool]:
        """`statements` committed (or rolled back, raising), True; False when the write
        process cannot be reached: then the caller writes them itself."""
        return self._send(_Statements(0, statements.statements))

    async def _send(self, job: _Job | _Statements) -> bool:
        transport = self._transport or await self._open()
        if transport is None or transport.is_closing():
            return False
        loop = asyncio.get_running_loop()
        job_id = job.id = next(self._ids)
        answer: asyncio.Future[_Done] = loop.create_future()
        self._waiting[job_id] = answer
        self._jobs.put(job)
        # A plain timer, as the writer's own deadlines: asyncio.timeout costs several times more.
        timer = loop.call_at(loop.time() + self._answer_timeout, self._give_up, job_id)
        try:
            done = await answer
        finally:
            timer.cancel()
            self._waiting.pop(job_id, None)
        _raise(done)
        return True

    def _give_up(self, job_id: int) -> None:
        answer = self._waiting.pop(job_id, None)
        if answer is not None and not answer.done():
            answer.set_exception(StoreBusy("The write process did not answer; try again shortly."))

    async def _open(self) -> asyncio.Transport | None:
        """The connection, opened by the first caller; the others wait for the same try."""
        if asyncio.get_running_loop().time() < self._retry_at:
            return None
        opening = self._opening
        if opening is None:
            opening = self._opening = asyncio.ensure_future(self._connect())
            opening.add_done_callback(self._opened)
        await asyncio.shield(opening)
        return self._transport

    def _opened(self, opening: asyncio.Future[bool]) -> None:
        self._opening = None

    async def _connect(self) -> bool:
        loop = asyncio.get_running_loop()
        try:
            await loop.create_unix_connection(lambda: _Answers(self), self._socket_path)
        except OSError as error:
            self._unreachable(f"cannot reach it ({error.strerror or error})")
            return False
        return True

    def _connected(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._warned = False
        log.info("SQLite PATCHes go to the write process")

    def _answered(self, done: _Done) -> None:
        answer = self._waiting.pop(done.id, None)
        if answer is not None and not answer.done():
            answer.set_result(done)

    def _lost(self) -> None:
        self._transport = None
        self._jobs.clear()
        waiting, self._waiting = self._waiting, {}
        for answer in waiting.values():
            if not answer.done():  # sent, its fate unknown: a retry is safe
                answer.set_exception(StoreBusy("The write process stopped; try again shortly."))
        if not self._closed:
            self._unreachable("its connection closed")

    def _unreachable(self, why: str) -> None:
        self._retry_at = asyncio.get_running_loop().time() + RETRY_SECONDS
        if not self._warned:
            self._warned = True
            log.warning("SQLite write process: %s; this worker writes its PATCHes itself", why)

    def close(self) -> None:
        self._closed = True
        if self._transport is not None:
            self._transport.close()


class _Answers(asyncio.Protocol):
    def __init__(self, owner: WriteProcess) -> None:
        self._owner = owner
        self._frames = _Frames()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._owner._connected(cast(asyncio.Transport, transport))  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        try:
            for message in self._frames.feed(data):
                self._owner._answered(_decode_done(message))
        except (ValueError, msgspec.DecodeError) as error:
            log.error("SQLite write process sent garbage (%s)", error)

    def connection_lost(self, exc: Exception | None) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closing: nobody waits
            self._owner._lost()


def _raise(done: _Done) -> None:
    if not done.error:
        return
    error = _ERRORS.get(done.error)
    if error is None:
        raise RuntimeError("the SQLite write process failed to apply a write (see its log)")
    if issubclass(error, InvalidRequest):
        raise error(done.detail, done.errors)
    raise error(done.detail)
