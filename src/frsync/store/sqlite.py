"""The SQLite backend: one connection per process, WAL, the write lock taken up front.

Statements run on the event-loop thread itself. A PATCH transaction here takes tens of
microseconds, less than handing it to a worker thread would cost, and a process serves one
transaction at a time anyway (SQLite has one writer). Waiting for another process's lock is
bounded by `busy_timeout`; past it the request answers 503.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from frsync.contract import INT64_MAX
from frsync.domain import AccountingState, Principal
from frsync.errors import InvalidRequest, NotFound, StoreBusy
from frsync.models import FulfillmentRequest, HistoryEntry, TokenType, now_ms
from frsync.store import queries, sandbox_sqlite
from frsync.store.base import (
    MISSING_PARENT,
    REVOKED_COUNT_SQL,
    Audit,
    FrQuery,
    LoadData,
    PlanFn,
    TokenInfo,
)
from frsync.store.rows import (
    FR_COLUMNS,
    HISTORY_COLUMNS,
    HISTORY_READ_COLUMNS,
    ITEM_COLUMNS,
    accounting_state,
    fr_from_row,
    group_items,
    history_from_row,
)
from frsync.store.sqlite_checkpoint import BACKSTOP_PAGES, Checkpointer

_FR_SELECT = f"SELECT {', '.join(FR_COLUMNS)} FROM fulfillment_requests"
_ITEM_SELECT = f"SELECT {', '.join(ITEM_COLUMNS)} FROM fulfillment_request_items"
# The FR's accounting state and its items' external ids in one statement: a row per item
# (one row with NULL item columns for an FR without items).
_STATE_SQL = (
    "SELECT fr.account_id, fr.source_id, fr.channel_id, fr.accounting_synced,"
    " fr.external_accounting_id, fr.accounting_error, fr.accounting_synced_at,"
    " i.id, i.external_accounting_item_id"
    " FROM fulfillment_requests fr"
    " LEFT JOIN fulfillment_request_items i ON i.fulfillment_request_id = fr.id"
    " WHERE fr.id = ?"
)
_HISTORY_INSERT = (
    f"INSERT INTO accounting_history (fulfillment_request_id, {', '.join(HISTORY_COLUMNS)})"
    " VALUES (?, ?, ?, ?, ?, ?)"
)
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
_LOADED_CHILDREN = ("sources", "channels", "fulfillment_requests", "fulfillment_request_items")


def path_from_url(url: str) -> str:
    """`sqlite:///frsync.db` → `frsync.db`; `sqlite:////abs/x.db` → `/abs/x.db`."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or len(url) == len(prefix):
        raise ValueError(f"not a SQLite URL (want sqlite:///path/to/file.db): {url!r}")
    return url[len(prefix) :].split("?", 1)[0]


class SqliteStore:
    def __init__(self, path: str, *, busy_timeout: float = 2.0, synchronous: str = "NORMAL"):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(
            path, isolation_level=None, check_same_thread=False, timeout=busy_timeout
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode never loses a commit to a killed process; FULL also
        # survives power loss at the cost of an fsync per commit.
        self._db.execute(f"PRAGMA synchronous={synchronous}")
        self._db.execute("PRAGMA foreign_keys=ON")
        # Random access over a large table: keep hot pages in this process (64 MiB) and map
        # the file, so a lookup costs memory reads rather than read() calls.
        self._db.execute("PRAGMA cache_size=-65536")
        self._db.execute("PRAGMA mmap_size=268435456")
        self._busy_timeout = busy_timeout
        self._busy_timeout_ms = int(busy_timeout * 1000)
        self._db.execute(f"PRAGMA busy_timeout={self._busy_timeout_ms}")
        self._db.execute(f"PRAGMA wal_autocheckpoint={BACKSTOP_PAGES}")
        self._checkpointer = Checkpointer(path)

    @classmethod
    def from_url(cls, url: str, *, busy_timeout: float = 2.0) -> SqliteStore:
        synchronous = "FULL" if "synchronous=full" in url.lower() else "NORMAL"
        return cls(path_from_url(url), busy_timeout=busy_timeout, synchronous=synchronous)

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, the lock taken up front so it can never be upgraded into
        a deadlock; committed on return, rolled back on raise."""
        with _busy_as_503():
            self._begin_immediate()
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    async def _transaction(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run `work(db)` in one write transaction: committed on return, rolled back on
        raise. Every write of this store goes through here."""
        with self._write() as db:
            return work(db)

    async def _query(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run `work(db)`, which only reads; a locked or unreadable file is StoreBusy."""
        with _busy_as_503():
            return work(self._db)

    def _begin_immediate(self) -> None:
        """Take the write lock, polling every few tens of microseconds.

        SQLite's own busy handler sleeps 1, 2, 5, 10… ms between tries, while another
        worker's PATCH holds the lock for about a tenth of a millisecond: with two workers
        that wait, not the work, set the pace. So the connection's busy timeout is off for
        BEGIN, and this loop backs off from 25 µs to 1 ms until `busy_timeout` has passed."""
        deadline = time.monotonic() + self._busy_timeout
        delay = 25e-6
        self._db.execute("PRAGMA busy_timeout=0")
        try:
            while True:
                try:
                    self._db.execute("BEGIN IMMEDIATE")
                    return
                except sqlite3.OperationalError as error:
                    if _code(error) != _SQLITE_BUSY or time.monotonic() + delay > deadline:
                        raise
                time.sleep(delay)
                delay = min(delay * 2, 1e-3)
        finally:
            self._db.execute(f"PRAGMA busy_timeout={self._busy_timeout_ms}")

    async def find_token(self, token_hash: bytes) -> Principal | None:
        row = await self._query(lambda db: db.execute(_PRINCIPAL_SQL, (token_hash,)).fetchone())
        return None if row is None else Principal(row[0], row[1], row[2])

    async def revoked_token_count(self) -> int:
        (count,) = await self._query(lambda db: db.execute(REVOKED_COUNT_SQL).fetchone())
        return int(count)

    async def get_fulfillment_request(
        self, fr_id: int, principal: Principal
    ) -> FulfillmentRequest | None:
        sql = f"{_FR_SELECT} WHERE id = ? AND {principal.scope_column} = ?"

        def read(db: sqlite3.Connection) -> FulfillmentRequest | None:
            row = db.execute(sql, (fr_id, principal.scope_id)).fetchone()
            if row is None:
                return None
            items = db.execute(
                f"{_ITEM_SELECT} WHERE fulfillment_request_id = ? ORDER BY id", (fr_id,)
            ).fetchall()
            return fr_from_row(row, items)

        return await self._query(read)

    async def sync_accounting(self, fr_id: int, plan: PlanFn, audit: Audit) -> None:
        await self._transaction(lambda db: _apply_sync(db, fr_id, plan, audit))

    async def accounting_history(
        self, fr_id: int, principal: Principal, *, limit: int = 20, before_id: int | None = None
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

        return await self._query(read)

    async def list_fulfillment_requests(
        self, principal: Principal, query: FrQuery
    ) -> list[FulfillmentRequest]:
        sql, params = queries.list_sql(principal, query, FR_COLUMNS, placeholder=_qmark, hints=True)

        def read(db: sqlite3.Connection) -> list[FulfillmentRequest]:
            rows = db.execute(sql, params).fetchall()
            if not rows:
                return []
            ids = [row[0] for row in rows]
            marks = ", ".join("?" * len(ids))
            items = db.execute(
                f"{_ITEM_SELECT} WHERE fulfillment_request_id IN ({marks})", ids
            ).fetchall()
            return group_items(rows, items)

        return await self._query(read)

    async def count_fulfillment_requests(self, principal: Principal, query: FrQuery) -> int:
        sql, params = queries.count_sql(principal, query, placeholder=_qmark, hints=True)
        (count,) = await self._query(lambda db: db.execute(sql, params).fetchone())
        return int(count)

    async def load(self, batches: Iterable[LoadData]) -> None:
        # Foreign keys are checked once before the commit rather than row by row: an upsert
        # checked row by row costs three times as much. The connection runs one transaction
        # at a time, so nothing else uses it while the checks are off.
        def upsert(db: sqlite3.Connection) -> None:
            for batch in batches:
                for sql, rows in queries.load_statements(batch, placeholder=_qmark):
                    if rows:
                        db.executemany(sql, rows)
            for table in _LOADED_CHILDREN:
                if db.execute(f"PRAGMA foreign_key_check({table})").fetchone():
                    raise InvalidRequest(MISSING_PARENT)
            sandbox_sqlite.take_baseline(db)  # what a sandbox reset goes back to

        self._db.execute("PRAGMA foreign_keys=OFF")
        try:
            await self._transaction(upsert)
        except sqlite3.IntegrityError as error:
            # SQLite cannot say which row; the words are the PostgreSQL store's.
            if error.sqlite_errorcode == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
                raise InvalidRequest(MISSING_PARENT) from error
            raise
        finally:
            self._db.execute("PRAGMA foreign_keys=ON")

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

        return await self._transaction(issue)

    async def revoke_token(self, token_id: int) -> bool:
        def revoke(db: sqlite3.Connection) -> bool:
            cursor = db.execute(
                "UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                (now_ms(), token_id),
            )
            return cursor.rowcount == 1

        return await self._transaction(revoke)

    async def list_tokens(self) -> list[TokenInfo]:
        rows = await self._query(
            lambda db: db.execute(
                "SELECT id, token_type, scope_id, label, created_at, revoked_at"
                " FROM api_tokens ORDER BY id"
            ).fetchall()
        )
        return [TokenInfo(*row) for row in rows]

    async def ping(self) -> None:
        await self._query(lambda db: db.execute("SELECT 1").fetchone())

    async def close(self) -> None:
        self._checkpointer.stop()
        self._db.close()


def _qmark(_: int) -> str:
    return "?"


def _apply_sync(db: sqlite3.Connection, fr_id: int, plan: PlanFn, audit: Audit) -> None:
    rows = db.execute(_STATE_SQL, (fr_id,)).fetchall()
    change = plan(_state_from_rows(rows) if rows else None)
    if change.fr_columns:
        assignments = ", ".join(f"{column} = ?" for column in change.fr_columns)
        db.execute(
            f"UPDATE fulfillment_requests SET {assignments} WHERE id = ?",
            (*change.fr_columns.values(), fr_id),
        )
    if change.item_external_ids:
        db.executemany(
            "UPDATE fulfillment_request_items SET external_accounting_item_id = ? WHERE id = ?",
            [(ext, item_id) for item_id, ext in change.item_external_ids.items()],
        )
    entry = (fr_id, audit.at, audit.token_id, audit.token_type, audit.request_id)
    db.execute(_HISTORY_INSERT, (*entry, msgspec.json.encode(change.diff).decode()))


def _state_from_rows(rows: list[Any]) -> AccountingState:
    # A row per item (one with NULL item columns when the FR has none): see _STATE_SQL.
    return accounting_state(rows[0], {r[7]: r[8] for r in rows if r[7] is not None})


# Result codes that mean "the database cannot be used right now", as opposed to a bug:
# BUSY, LOCKED, IOERR, FULL, CANTOPEN, PROTOCOL.
_SQLITE_BUSY = 5
_TRANSIENT_CODES = {_SQLITE_BUSY, 6, 10, 13, 14, 15}


def _code(error: sqlite3.Error) -> int:
    """The primary result code (extended codes carry it in the low byte)."""
    return int(getattr(error, "sqlite_errorcode", 0)) & 0xFF


@contextmanager
def _busy_as_503() -> Iterator[None]:
    """A locked, missing or unreadable database is 'try again later', not a crash."""
    try:
        yield
    except sqlite3.OperationalError as error:
        if _code(error) in _TRANSIENT_CODES:
            raise StoreBusy() from error
        raise
