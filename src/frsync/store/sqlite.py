"""The SQLite backend: WAL, lookups on the event loop, scans in threads, writes on a writer
thread in groups.

Lookups (a token, an FR, a page of history) run on the event-loop thread, on a connection of
their own: a primary-key lookup takes tens of microseconds, less than a thread handoff, and
in WAL mode a reader never waits for a writer. Reads that may scan many rows (the list and
count endpoints, the console's big reads) run on read connections in threads
(`read_off_loop`, store/sqlite_readers.py): a count over 1M FRs takes tens of milliseconds.
On the loop, the rare SQLITE_BUSY a reader can still meet (WAL recovery, another process's
checkpoint in RESTART/TRUNCATE mode) is retried with asyncio.sleep, never waited for on the
loop, until `busy_timeout`; past it the request answers 503.

Writes go to the `Writer` of store/sqlite_writer.py: one thread per process with its own
connection, which takes the write lock (waiting there, not on the loop), applies the jobs
that queued up meanwhile in one transaction, each in its own savepoint, and answers each after
the COMMIT. The PATCHes among them are applied together in a few statements
(store/sqlite_sync.py). A write not started within `busy_timeout` answers 503 at that moment.
Under `frsync serve`, the PATCHes go instead to one write process that applies every
worker's (store/sqlite_write_process.py), and come back here only if it cannot be reached.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import msgspec

from frsync.contract import DEFAULT_HISTORY_LIMIT, INT64_MAX
from frsync.domain import AccountingPlan, Principal
from frsync.errors import InvalidRequest, NotFound, StoreBusy
from frsync.models import FulfillmentRequest, HistoryEntry, TokenType, now_ms
from frsync.store import queries
from frsync.store.base import (
    MISSING_PARENT,
    REVOKED_COUNT_SQL,
    Audit,
    FrQuery,
    LoadData,
    TokenInfo,
)
from frsync.store.placeholders import qmark
from frsync.store.rows import (
    FR_JOIN,
    FR_SELECT,
    HISTORY_READ_COLUMNS,
    ITEM_COLUMNS,
    fr_from_row,
    group_items,
    history_from_row,
)
from frsync.store.sqlite_checkpoint import BACKSTOP_PAGES, Checkpointer
from frsync.store.sqlite_readers import Readers
from frsync.store.sqlite_sync import SyncAccounting
from frsync.store.sqlite_write_process import Param, Statements, WriteProcess
from frsync.store.sqlite_writer import (
    SQLITE_BUSY,
    Writer,
    is_transient,
    primary_code,
)

_FR_SELECT = f"SELECT {', '.join(FR_SELECT)} FROM {FR_JOIN}"
_ITEM_SELECT = f"SELECT {', '.join(ITEM_COLUMNS)} FROM fulfillment_request_items"
# A page of history: a backward range scan of ix_history_fr_id (fulfillment_request_id, id).
_HISTORY_PAGE_SQL = (
    f"SELECT {', '.join(HISTORY_READ_COLUMNS)} FROM accounting_history"
    " WHERE fulfillment_request_id = ? AND id <= ? ORDER BY id DESC LIMIT ?"
)
_PRINCIPAL_SQL = (
    "SELECT id, token_type, scope_id FROM api_tokens WHERE token_hash = ? AND revoked_at IS NULL"
)
_SCOPE_TABLES = {"account": "accounts", "source": "sources", "channel": "channels"}
T = TypeVar("T")
_LOADED_CHILDREN = (
    "sources",
    "channels",
    "fulfillment_requests",
    "fulfillment_request_accounting",
    "fulfillment_request_items",
)


def synchronous_of(url: str) -> str:
    """`?synchronous=full` in the URL: an fsync per commit; NORMAL otherwise."""
    return "FULL" if "synchronous=full" in url.lower() else "NORMAL"


def path_from_url(url: str) -> str:
    """`sqlite:///frsync.db` → `frsync.db`; `sqlite:////abs/x.db` → `/abs/x.db`."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or len(url) == len(prefix):
        raise ValueError(f"not a SQLite URL (want sqlite:///path/to/file.db): {url!r}")
    return url[len(prefix) :].split("?", 1)[0]


class SqliteStore:
    kind: ClassVar[str] = "sqlite"

    def __init__(
        self,
        path: str,
        *,
        busy_timeout: float = 2.0,
        synchronous: str = "NORMAL",
        write_socket: str | None = None,
    ):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._busy_timeout = busy_timeout
        self._db = connect(path, synchronous)  # the loop's, for reads: see `read`
        self._writer = Writer(connect(path, synchronous), busy_timeout)
        self._checkpointer = Checkpointer(path)
        self._readers = Readers(path, busy_timeout)  # for reads that may scan many rows
        self._after_load: list[Callable[[sqlite3.Connection], None]] = []
        # `frsync serve`'s write process, which applies every worker's PATCHes (if any).
        self._write_process = WriteProcess(write_socket, busy_timeout) if write_socket else None

    @classmethod
    def from_url(
        cls, url: str, *, busy_timeout: float = 2.0, write_socket: str | None = None
    ) -> SqliteStore:
        return cls(
            path_from_url(url),
            busy_timeout=busy_timeout,
            synchronous=synchronous_of(url),
            write_socket=write_socket,
        )

    def after_load(self, hook: Callable[[sqlite3.Connection], None]) -> None:
        """Run `hook(db)` at the end of every load, inside its transaction (how a feature
        records what a load left, without the store knowing the feature)."""
        self._after_load.append(hook)

    async def transaction(
        self, work: Callable[[sqlite3.Connection], T], *, foreign_keys: bool = True
    ) -> T:
        """Run `work(db)` in a write transaction, on the writer thread: its changes are
        committed when it returns, rolled back when it raises (then the error propagates).
        Other jobs may share the transaction, each in its own savepoint. Every write of this
        store goes through here. `foreign_keys=False`: a transaction of its own, unchecked."""
        with _transient_as_store_busy():
            result: T = await self._writer.run(work, foreign_keys)
            return result

    async def write_statements(self, statements: Sequence[tuple[str, Sequence[Param]]]) -> None:
        """Run `statements` in order in one write transaction, in `serve`'s write process when
        there is one (a worker's periodic writes: see store/sqlite_write_process.py), else
        on this process's writer thread."""
        work = Statements([(statement, list(params)) for statement, params in statements])
        if self._write_process is None or not await self._write_process.write(work):
            await self.transaction(work)

    async def read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run `work(db)`, which only reads, on the loop's connection. It never waits there:
        SQLITE_BUSY is retried after an await, until `busy_timeout`, then StoreBusy."""
        try:
            return work(self._db)  # the common case, kept free of any wrapper
        except sqlite3.OperationalError as error:
            if primary_code(error) != SQLITE_BUSY:
                _raise_transient(error)
                raise
        deadline = time.monotonic() + self._busy_timeout
        delay = 1e-3
        while time.monotonic() + delay <= deadline:
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)
            try:
                return work(self._db)
            except sqlite3.OperationalError as error:
                if primary_code(error) != SQLITE_BUSY:
                    _raise_transient(error)
                    raise
        raise StoreBusy()

    async def read_off_loop(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run `work(db)`, which only reads and may scan many rows (a count, a page of a
        million-FR scope), in a thread on a read connection of its own: StoreBusy when the
        file is locked or unreadable past `busy_timeout`."""
        return await self._readers.run(work)

    async def find_token(self, token_hash: bytes) -> Principal | None:
        row = await self.read(lambda db: db.execute(_PRINCIPAL_SQL, (token_hash,)).fetchone())
        return None if row is None else Principal(row[0], row[1], row[2])

    async def revoked_token_count(self) -> int:
        (count,) = await self.read(lambda db: db.execute(REVOKED_COUNT_SQL).fetchone())
        return int(count)

    async def get_fulfillment_request(
        self, fr_id: int, principal: Principal
    ) -> FulfillmentRequest | None:
        sql = f"{_FR_SELECT} WHERE f.id = ? AND f.{principal.scope_column} = ?"

        def read(db: sqlite3.Connection) -> FulfillmentRequest | None:
            row = db.execute(sql, (fr_id, principal.scope_id)).fetchone()
            if row is None:
                return None
            items = db.execute(
                f"{_ITEM_SELECT} WHERE fulfillment_request_id = ? ORDER BY id", (fr_id,)
            ).fetchall()
            return fr_from_row(row, items)

        return await self.read(read)

    async def sync_accounting(self, fr_id: int, plan: AccountingPlan, audit: Audit) -> None:
        sent = self._write_process and await self._write_process.sync_accounting(fr_id, plan, audit)
        if not sent:
            await self.transaction(SyncAccounting(fr_id, plan, audit))

    async def accounting_history(
        self,
        fr_id: int,
        principal: Principal,
        *,
        limit: int = DEFAULT_HISTORY_LIMIT,
        before_id: int | None = None,
    ) -> list[HistoryEntry] | None:
        owner_sql = (
            f"SELECT 1 FROM fulfillment_requests WHERE id = ? AND {principal.scope_column} = ?"
        )
        # `id <= before - 1` rather than `id < before`, so "no bound" is INT64_MAX exactly.
        newest = INT64_MAX if before_id is None else before_id - 1

        def read(db: sqlite3.Connection) -> list[HistoryEntry] | None:
            if db.execute(owner_sql, (fr_id, principal.scope_id)).fetchone() is None:
                return None
            rows = db.execute(_HISTORY_PAGE_SQL, (fr_id, newest, limit)).fetchall()
            return [history_from_row(row) for row in rows]

        return await self.read(read)

    async def list_fulfillment_requests(
        self, principal: Principal, query: FrQuery
    ) -> list[FulfillmentRequest]:
        def read(db: sqlite3.Connection) -> list[FulfillmentRequest]:
            with _snapshot(db):  # the count, the page and its items as of one moment
                total = _count(db, principal, query) if queries.count_first(query) else None
                sql, params = queries.list_sql(
                    principal, query, FR_SELECT, placeholder=qmark, hints=True, total=total
                )
                rows = db.execute(sql, params).fetchall()
                if not rows:
                    return []
                ids = [row[0] for row in rows]
                marks = ", ".join("?" * len(ids))
                items = db.execute(
                    f"{_ITEM_SELECT} WHERE fulfillment_request_id IN ({marks})", ids
                ).fetchall()
            return group_items(rows, items)

        return await self.read_off_loop(read)

    async def count_fulfillment_requests(self, principal: Principal, query: FrQuery) -> int:
        return await self.read_off_loop(lambda db: _count(db, principal, query))

    async def load(self, batches: Iterable[LoadData]) -> None:
        # Foreign keys are checked once before the commit rather than row by row: an upsert
        # checked row by row costs three times as much. The transaction is the load's alone
        # (`foreign_keys=False`), so no other write goes unchecked.
        def upsert(db: sqlite3.Connection) -> None:
            for batch in batches:
                for sql, rows in queries.load_statements(batch, placeholder=qmark, many=json_rows):
                    if rows:
                        db.executemany(sql, rows)
            for table in _LOADED_CHILDREN:
                if db.execute(f"PRAGMA foreign_key_check({table})").fetchone():
                    raise InvalidRequest(MISSING_PARENT)
            for hook in self._after_load:
                hook(db)

        try:
            await self.transaction(upsert, foreign_keys=False)
        except sqlite3.IntegrityError as error:
            # SQLite cannot say which row; the words are the PostgreSQL store's.
            if error.sqlite_errorcode == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
                raise InvalidRequest(MISSING_PARENT) from error
            raise

    async def create_token(
        self, token_hash: bytes, token_type: TokenType, scope_id: int, label: str | None
    ) -> int:
        def issue(db: sqlite3.Connection) -> int:
            table = _SCOPE_TABLES.get(token_type)  # an operator token has no scope row
            if (
                table
                and db.execute(f"SELECT 1 FROM {table} WHERE id = ?", (scope_id,)).fetchone()
                is None
            ):
                raise NotFound(f"There is no {token_type} with id {scope_id}.")
            cursor = db.execute(
                "INSERT INTO api_tokens (token_hash, token_type, scope_id, label, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (token_hash, token_type, scope_id, label, now_ms()),
            )
            return int(cursor.lastrowid or 0)

        return await self.transaction(issue)

    async def revoke_token(self, token_id: int) -> bool:
        def revoke(db: sqlite3.Connection) -> bool:
            cursor = db.execute(
                "UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                (now_ms(), token_id),
            )
            return cursor.rowcount == 1

        return await self.transaction(revoke)

    async def list_tokens(self) -> list[TokenInfo]:
        rows = await self.read(
            lambda db: db.execute(
                "SELECT id, token_type, scope_id, label, created_at, revoked_at"
                " FROM api_tokens ORDER BY id"
            ).fetchall()
        )
        return [TokenInfo(*row) for row in rows]

    async def ping(self) -> None:
        """Readable, and, after a write failed for lack of disk (or an I/O error), writable:
        while writes fail the server is not ready. Only then is a tiny write tried, so a
        healthy store pays one SELECT per probe."""
        await self.read(lambda db: db.execute("SELECT 1").fetchone())
        if self._writer.failing:
            await self.transaction(_probe_write)
            if self._writer.failing:  # the probe's commit failed, yet answered nothing
                raise StoreBusy("The store cannot write; try again shortly.")

    async def close(self) -> None:
        if self._write_process is not None:
            self._write_process.close()
        # Both joins wait for threads (the writer drains the jobs already submitted): not
        # on the loop.
        await asyncio.to_thread(self._writer.close)
        await asyncio.to_thread(self._checkpointer.stop)
        self._readers.close()
        self._db.close()


def connect(path: str, synchronous: str, *, journal_in_memory: bool = False) -> sqlite3.Connection:
    """A connection to the database file with the store's pragmas.

    `journal_in_memory`, for a connection whose every write is bounded (the write process's
    PATCH batches): a statement inside a savepoint copies each page it changes first to a
    statement journal, which SQLite spills to a temporary file past 64 KiB, as a batch of
    PATCHes does (7.5 pages each). That file's writes were a quarter of the write process's
    CPU under load. In memory, its size is the batch's pages; on a connection that also runs
    unbounded statements (loads, resets) it could grow with the data, so the others keep
    the file."""
    # busy_timeout 0: no connection sleeps inside SQLite waiting for a lock. The reader
    # retries after an await, the writer thread polls at its own pace.
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=0)
    db.execute("PRAGMA journal_mode=WAL")
    # NORMAL in WAL mode never loses a commit to a killed process; FULL also survives power
    # loss at the cost of an fsync per commit.
    db.execute(f"PRAGMA synchronous={synchronous}")
    db.execute("PRAGMA foreign_keys=ON")
    # Random access over a large table: keep hot pages in this process (64 MiB) and map the
    # file, so a lookup costs memory reads rather than read() calls.
    db.execute("PRAGMA cache_size=-65536")
    db.execute("PRAGMA mmap_size=268435456")
    db.execute(f"PRAGMA wal_autocheckpoint={BACKSTOP_PAGES}")
    if journal_in_memory:
        db.execute("PRAGMA temp_store=MEMORY")
    return db


def json_rows(
    columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
) -> tuple[str, tuple[Any, ...]]:
    """Many rows as one statement's parameter: a JSON array of them, read back element by
    element. (WHERE true: SQLite needs a WHERE to parse an upsert's INSERT … SELECT.)"""
    picks = ", ".join(f"json_extract(value, '$[{n}]')" for n in range(len(columns)))
    return f"SELECT {picks} FROM json_each(?) WHERE true", (msgspec.json.encode(rows).decode(),)


def _count(db: sqlite3.Connection, principal: Principal, query: FrQuery) -> int:
    sql, params = queries.count_sql(principal, query, placeholder=qmark, hints=True)
    (count,) = db.execute(sql, params).fetchone()
    return int(count)


@contextmanager
def _snapshot(db: sqlite3.Connection) -> Iterator[None]:
    """A read transaction on an autocommit connection: its statements see one state of the
    database (WAL: the writer goes on meanwhile)."""
    db.execute("BEGIN")
    try:
        yield
    finally:
        if db.in_transaction:  # an error may have ended it already
            db.execute("COMMIT")  # read only: nothing to roll back


def _probe_write(db: sqlite3.Connection) -> None:
    # Rewrites page 1 with the value it has: a real page in the WAL, no change in the data.
    (version,) = db.execute("PRAGMA user_version").fetchone()
    db.execute(f"PRAGMA user_version={int(version):d}")


def _raise_transient(error: sqlite3.OperationalError) -> None:
    """A locked, missing or unreadable database is 'try again later', not a crash."""
    if is_transient(error):
        raise StoreBusy() from error


@contextmanager
def _transient_as_store_busy() -> Iterator[None]:
    try:
        yield
    except sqlite3.OperationalError as error:
        _raise_transient(error)
        raise
