"""Graceful shutdown: SIGTERM with 50 slow requests in flight.

A real `python -m frsync serve --workers 2` with `FRSYNC_SHUTDOWN_GRACE_SECONDS` = `GRACE`.
Two workers, because that is how the server is deployed and the harder case: SIGTERM goes to
uvicorn's supervisor, which must pass it on to each worker and wait for both to drain, so the
bound on exit is the workers' grace period plus the supervisor's own overhead.

Every request PATCHes its own FR with its own marker (see harness.marker_body), so each
request's effect can be told apart in the database afterwards. The requests are slow in
the way real ones are: their head and the first bytes of the body arrive, then the body
trickles. At SIGTERM (after `SETTLE` s, all of them inside the app, reading their body):

- fast: the rest of the body trickles in over `FAST_AT` s, well inside the grace period:
  they must finish, 204, with their change and its history entry (by X-Request-Id) stored;
- slow: the rest would take `SLOW_AT` s, past the grace period: uvicorn cancels them when
  it ends; they must be answered 503 (type shutting-down) and leave nothing behind;
- locked (PostgreSQL only): the body is complete, but another connection holds the FR's row
  lock, so the request waits *inside* its transaction (after BEGIN) when it is cancelled:
  the transaction must roll back whole. (SQLite runs each transaction on the event-loop
  thread without an await inside, so a SQLite transaction cannot be cut in the middle.)

Then: the process (supervisor and workers) must be gone within `GRACE` + `EXIT_MARGIN` s of
the SIGTERM with status 0, no answer may be a 500, and the database is read directly: a
204's marker is the FR's value and is in a history entry with that request's id; any other
request's marker is nowhere (FR, items or history).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from tests.faults.harness import (
    Dataset,
    ServerProcess,
    marker_body,
    postgres_database,
    prepare_database,
)
from tests.faults.raw_http import Answer, close_quietly, read_answer, read_some, request_head

GRACE = 3.0
# Supervisor and worker teardown on a loaded two-core machine (6.36 s in all was seen at load
# 11); GRACE + EXIT_MARGIN stays short of SLOW_AT, which a server waiting for them would reach.
EXIT_MARGIN = 4.0
FAST_AT, SLOW_AT = 1.0, 10.0  # seconds after SIGTERM at which the body's last byte is sent
CHUNKS = {"fast": 4, "slow": 8}  # the rest of the body goes in this many evenly spaced pieces
SETTLE = 1.0  # seconds between the requests' first bytes and the SIGTERM
PREFIX = 5  # body bytes sent with the head, before the SIGTERM
IN_FLIGHT = 50
LOCKED = 10  # PostgreSQL: of the 50, this many wait on a row lock instead of trickling
WORKERS = 2

_FR_SQL = "SELECT id, external_accounting_id, accounting_error FROM fulfillment_request_accounting"
_ITEM_SQL = (
    "SELECT fulfillment_request_id, external_accounting_item_id FROM fulfillment_request_items"
)
_HISTORY_SQL = "SELECT fulfillment_request_id, request_id, changes FROM accounting_history"


@dataclass
class Outcome:
    group: str  # fast | slow | locked
    fr: int
    marker: str
    answer: Answer
    answered_at: float  # seconds after SIGTERM the connection was answered and closed


@dataclass
class ShutdownResult:
    store: str
    outcomes: list[Outcome] = field(default_factory=list)
    exit_seconds: float = 0.0
    exit_code: int | None = None
    workers_left: int = 0  # worker processes still alive after the supervisor exited
    present: int = 0  # 204s whose change and history entry are stored
    missing: int = 0  # 204s whose change or history entry is not
    rolled_back: int = 0  # other requests that left nothing behind
    leaked: int = 0  # other requests whose marker is somewhere in the database
    tracebacks: int = 0
    cancel_lines: int = 0  # uvicorn's "timeout graceful shutdown exceeded", one per worker
    unhandled: int = 0  # our "unhandled error" lines: each was a 500

    @property
    def bound(self) -> float:
        return GRACE + EXIT_MARGIN

    def statuses(self, group: str) -> Counter[str]:
        found: Counter[str] = Counter()
        for o in self.outcomes:
            if o.group == group:
                found[_label(o.answer)] += 1
        return found

    def answered_at(self, group: str) -> tuple[float, float]:
        """(earliest, latest) answer of a group, seconds after SIGTERM."""
        times = [o.answered_at for o in self.outcomes if o.group == group] or [0.0]
        return min(times), max(times)

    @property
    def groups(self) -> list[str]:
        return sorted({o.group for o in self.outcomes}, key=["fast", "slow", "locked"].index)

    @property
    def server_errors(self) -> int:
        """5xx answers other than the 503 shutting-down that a cut-off request is owed."""
        return sum(1 for o in self.outcomes
                   if o.answer.status and o.answer.status >= 500 and not _shutting_down(o.answer))  # fmt: skip

    @property
    def ok(self) -> bool:
        fast_done = all(o.answer.status == 204 for o in self.outcomes if o.group == "fast")
        # A cut-off request is owed a 503 shutting-down; a bare reset would leave the client
        # guessing, so it fails the run too (the database check tells the rest).
        cut_answered = all(_shutting_down(o.answer) for o in self.outcomes if o.group != "fast")
        return (
            len(self.outcomes) == IN_FLIGHT
            and fast_done
            and cut_answered
            and self.missing == 0
            and self.leaked == 0
            and self.server_errors == 0
            and self.unhandled == 0
            and self.exit_code == 0
            and self.exit_seconds <= self.bound
            and self.workers_left == 0
        )


def _shutting_down(answer: Answer) -> bool:
    return answer.status == 503 and b"shutting-down" in answer.body


def _label(answer: Answer) -> str:
    if answer.status is not None:
        return str(answer.status)
    return "reset" if answer.reset else "closed unanswered" if answer.closed else "no answer"


@contextmanager
def _database(store: str, workdir: Path) -> Iterator[str]:
    if store == "sqlite":
        yield f"sqlite:///{workdir / 'shutdown.db'}"
    else:
        with postgres_database("frsync_faults_shutdown") as url:
            yield url


def run_shutdown(store: str, workdir: Path) -> ShutdownResult:
    """SIGTERM a 2-worker server on `store` (sqlite|postgres) with `IN_FLIGHT` slow requests
    in flight; see the module docstring."""
    dataset = Dataset(accounts=1, frs_per_account=IN_FLIGHT)
    locked = LOCKED if store == "postgres" else 0
    trickling = IN_FLIGHT - locked
    groups = ["fast"] * (trickling // 2) + ["slow"] * (trickling - trickling // 2)
    groups += ["locked"] * locked
    plan = [(g, fr, f"sd-{dataset.run}-{g}-{n:03d}")
            for n, (g, fr) in enumerate(zip(groups, dataset.fr_ids(1), strict=True))]  # fmt: skip
    result = ShutdownResult(store)
    with _database(store, workdir) as url:
        prepare_database(url, dataset)
        env = {
            "FRSYNC_DATABASE_URL": url,
            "FRSYNC_SHUTDOWN_GRACE_SECONDS": str(GRACE),
            # Long enough that the slow bodies are cut off by the shutdown, not by a 408.
            "FRSYNC_REQUEST_READ_TIMEOUT": "60",
            # The locked requests wait for their row lock past the grace period rather than
            # giving up with a 503 first; and each worker's pool has room for all of them
            # besides the others (the kernel may hand all ten to one worker).
            "FRSYNC_STORE_BUSY_TIMEOUT": "30",
            "FRSYNC_POOL_SIZE": str(IN_FLIGHT),
        }
        server = ServerProcess(workdir, env, "--burst", "1000000", "--rate", "1000000",
                               workers=WORKERS)  # fmt: skip
        server.start()
        try:
            asyncio.run(_drive(server, dataset, plan, url if locked else None, result))
        finally:
            server.stop()  # a no-op when the scenario's SIGTERM already ended it
        log = server.log_text()
        result.tracebacks = log.count("Traceback")
        result.cancel_lines = log.count("timeout graceful shutdown exceeded")
        result.unhandled = log.count("unhandled error")
        rows = _snapshot_sqlite(url) if store == "sqlite" else asyncio.run(_snapshot_pg(url))
    _check(result, rows)
    return result


async def _drive(server: ServerProcess, dataset: Dataset, plan: list[tuple[str, int, str]],
                 lock_url: str | None, result: ShutdownResult) -> None:  # fmt: skip
    port = int(server.base.rsplit(":", 1)[1])
    token = dataset.token(1)
    bodies = {marker: msgspec.json.encode(marker_body(marker, dataset.items(fr)))
              for _, fr, marker in plan}  # fmt: skip
    blocker = None
    if lock_url is not None:
        import asyncpg

        blocker = await asyncpg.connect(lock_url)
        await blocker.execute("BEGIN")
        locked = [fr for g, fr, _ in plan if g == "locked"]
        await blocker.execute(
            "SELECT 1 FROM fulfillment_request_accounting WHERE id = ANY($1::bigint[]) FOR UPDATE",
            locked,
        )
    connections: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    try:
        for group, fr, marker in plan:
            body = bodies[marker]
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            connections.append((reader, writer))
            head = request_head("PATCH", f"/fulfillment-requests/{fr}/accounting-sync", {
                "X-API-TOKEN": token, "Content-Type": "application/json",
                "Content-Length": str(len(body))})  # fmt: skip
            writer.write(head + (body if group == "locked" else body[:PREFIX]))
            await writer.drain()
        await asyncio.sleep(SETTLE)
        pids = server.pids()
        sigterm = time.monotonic()
        stopping = asyncio.create_task(asyncio.to_thread(_timed_stop, server, sigterm))
        finishing = [_finish(c, bodies[m], g, fr, m, sigterm)
                     for c, (g, fr, m) in zip(connections, plan, strict=True)]  # fmt: skip
        result.outcomes = list(await asyncio.gather(*finishing))
        result.exit_seconds, result.exit_code = await stopping
        result.workers_left = sum(1 for pid in pids if _alive(pid))
    finally:
        for _, writer in connections:
            await close_quietly(writer)
        if blocker is not None:
            # Only now, with the server gone: its cancelled transactions had to roll back
            # while the rows were still locked, or they could not have committed anyway.
            await blocker.execute("ROLLBACK")
            await blocker.close()


def _timed_stop(server: ServerProcess, sigterm: float) -> tuple[float, int]:
    """SIGTERM (ServerProcess.stop), wait for the exit; (seconds after `sigterm`, status)."""
    code = server.stop()
    return time.monotonic() - sigterm, code


async def _finish(connection: tuple[asyncio.StreamReader, asyncio.StreamWriter], body: bytes,
                  group: str, fr: int, marker: str, sigterm: float) -> Outcome:  # fmt: skip
    """Trickle the rest of the body on schedule, listening between the pieces: an early
    answer (the cut-off 503) ends the request."""
    reader, writer = connection
    pieces: list[bytes] = []
    if group != "locked":
        rest, k = body[PREFIX:], CHUNKS[group]
        pieces = [rest[i * len(rest) // k : (i + 1) * len(rest) // k] for i in range(k)]
    end_at = FAST_AT if group == "fast" else SLOW_AT
    answer: Answer | None = None
    try:
        for i, piece in enumerate(pieces):
            at = sigterm + end_at * (i + 1) / len(pieces)
            first = await read_some(reader, max(0.0, at - time.monotonic()))
            if first is not None:
                answer = await read_answer(reader, first, 5)
                break
            writer.write(piece)
            await writer.drain()
        if answer is None:
            answer = await read_answer(reader, b"", GRACE + EXIT_MARGIN + 5)
    except ConnectionError:
        answer = Answer(None, reset=True, closed=True)
    return Outcome(group, fr, marker, answer, time.monotonic() - sigterm)


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


Rows = tuple[list[Any], list[Any], list[Any]]  # FRs, items, history entries


def _snapshot_sqlite(url: str) -> Rows:
    with closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as db:
        return (db.execute(_FR_SQL).fetchall(), db.execute(_ITEM_SQL).fetchall(),
                db.execute(_HISTORY_SQL).fetchall())  # fmt: skip


async def _snapshot_pg(url: str) -> Rows:
    import asyncpg

    connection = await asyncpg.connect(url)
    try:
        return (list(await connection.fetch(_FR_SQL)), list(await connection.fetch(_ITEM_SQL)),
                list(await connection.fetch(_HISTORY_SQL)))  # fmt: skip
    finally:
        await connection.close()


def _check(result: ShutdownResult, rows: Rows) -> None:
    """Each 204 stored whole with its history entry; every other marker nowhere at all."""
    frs, items, history = rows
    values: dict[int, set[str | None]] = {}
    for fr, external_id, error in frs:
        values.setdefault(fr, set()).update((external_id, error))
    for fr, item_value in items:
        values.setdefault(fr, set()).add(item_value)
    for outcome in result.outcomes:
        entries = [(rid, changes) for fr, rid, changes in history if outcome.marker in changes]
        if outcome.answer.status == 204:
            request_id = outcome.answer.headers.get("x-request-id")
            if values.get(outcome.fr) == {outcome.marker} and [rid for rid, _ in entries] == [
                request_id
            ]:
                result.present += 1
            else:
                result.missing += 1
        elif entries or any(outcome.marker in v for v in values.values()):
            result.leaked += 1
        else:
            result.rolled_back += 1
