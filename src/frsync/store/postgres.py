"""The PostgreSQL backend: asyncpg, one bounded pool per process, SQL shared with SQLite.

Nothing waits without a bound. A connection is acquired within `pool_acquire_timeout`, a
row lock within `store_busy_timeout` (`lock_timeout`), and a whole API call ends within both
plus a margin even if the server stops answering; each of these, and every dropped
connection, surfaces as StoreBusy (503), see `postgres_errors`. asyncpg discards a connection
that broke, so the pool heals by itself.

The PATCH is one round trip: `SELECT * FROM frsync_sync_accounting(…)`, a function created by
migration 0005 (now 0008's) that bounds its lock waits, locks the FR's accounting row and then
its items in id order, checks
scope and item ids, applies the merge-patch and appends the history entry, in the implicit
transaction of that one statement (prepared once per connection by asyncpg's statement
cache). When it refuses, it returns the state it read, and the same Python plan as the other
store's raises the same NotFound / InvalidItems from it. Every writer takes the same locks in
the same order (FR first, then items by id), so concurrent PATCHes of one FR queue up instead
of deadlocking. The locks are FOR NO KEY
UPDATE, what an UPDATE of non-key columns takes anyway: they exclude each other like FOR
UPDATE, but do not block the foreign-key checks of rows that merely point at the FR.

A write refused because the disk is full or the server is read-only marks the store as
failing: until a write succeeds again, `ping` (and so /readyz) tries a tiny write and
answers 503 while it fails.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager, suppress
from typing import Any, ClassVar

import asyncpg
from asyncpg import exceptions as pg

from frsync.config import Settings
from frsync.contract import DEFAULT_HISTORY_LIMIT, INT64_MAX
from frsync.domain import AccountingPlan, Principal
from frsync.errors import NotFound, StoreBusy
from frsync.models import FulfillmentRequest, HistoryEntry, TokenType, now_ms
from frsync.store import queries
from frsync.store.base import REVOKED_COUNT_SQL, Audit, FrQuery, LoadData, TokenInfo
from frsync.store.placeholders import dollar
from frsync.store.postgres_batch import Batcher
from frsync.store.postgres_errors import BROKEN, WRITE_REFUSED, load_errors, translated
from frsync.store.postgres_sql import (
    BATCH_SQL,
    GET_SQL,
    HISTORY_SQL,
    ISSUE_SQL,
    ISSUED_SQL,
    PRINCIPALS_SQL,
    REVOKE_SQL,
    SYNC_FAILED,
    SYNC_LOCK_TIMEOUT,
    SYNC_MISSING,
    SYNC_OK,
    SYNC_SQL,
    arrays,
    batch_patch,
    begin_sql,
    frs_from_joined_rows,
    list_sql,
    state_from_row,
    sync_args,
)
from frsync.store.rows import history_from_row

log = logging.getLogger(__name__)

# Past the acquire and lock timeouts, how long an API call may still take before it is
# abandoned: only a server that stopped answering (no RST, no error) gets this far.
_STALL_MARGIN = 5.0


def asyncpg_dsn(url: str) -> str:
    """`postgresql+asyncpg://…` (SQLAlchemy's spelling) → `postgresql://…`."""
    scheme, rest = url.split("://", 1)
    return f"{scheme.split('+', 1)[0]}://{rest}"


async def _keep_session(connection: asyncpg.Connection) -> None:
    """We leave no session state behind (SET LOCAL only; no LISTEN, cursors or advisory
    locks), so skip asyncpg's reset query: it would cost a round trip per release. asyncpg
    still rolls back a transaction left open, e.g. by a cancelled request."""


class PostgresStore:
    kind: ClassVar[str] = "postgresql"

    def __init__(self, pool: asyncpg.Pool, settings: Settings) -> None:
        self._pool = pool
        self._acquire_timeout = settings.pool_acquire_timeout
        self._deadline = settings.pool_acquire_timeout + settings.store_busy_timeout + _STALL_MARGIN
        self._lock_timeout_ms = max(1, round(settings.store_busy_timeout * 1000))
        # The last write was refused for lack of disk or a read-only server (see `ping`).
        self._write_failing = False
        self._after_load: list[Callable[[asyncpg.Connection], Awaitable[None]]] = []
        # Half the pool sends PATCH batches at most, a quarter token lookups; the rest stays
        # for reads.
        self._batcher = Batcher(
            self._send_batch, settings.pool_size // 2, settings.pool_acquire_timeout
        )
        # Token lookups waiting while others are in flight go as one statement: a cold token
        # cache (a worker's start, a revocation) misses on every token in use at once, and
        # each lookup was a round trip of its own: 17.6% of a worker's event-loop samples
        # under the bench's wrk load (10,000 tokens), 6.9% batched.
        self._token_lookups = Batcher(
            self._find_tokens, settings.pool_size // 4, settings.pool_acquire_timeout
        )

    @classmethod
    async def open(cls, settings: Settings, *, allow_unreachable: bool = False) -> PostgresStore:
        """Open the pool and try one connection, so an unreachable server fails here (as
        StoreBusy, within the connect timeout) rather than on the first request.

        `allow_unreachable` is for a server's worker: one started (or restarted) during an
        outage serves anyway, answering 503 (and /readyz 503) until the database answers,
        as a worker that was already running does. `frsync serve` itself checks the
        database before it starts any worker, so a wrong URL still fails at once."""
        pool = asyncpg.create_pool(
            asyncpg_dsn(settings.database_url),
            # No floor: during an outage asyncpg would keep reconnecting to hold one,
            # logging a traceback each time. Connections come on demand and stay.
            min_size=0,
            max_size=settings.pool_size,
            timeout=max(settings.pool_acquire_timeout, 1.0),  # connect timeout
            reset=_keep_session,
            server_settings={"application_name": "frsync"},
        )
        store = cls(await pool, settings)
        try:
            await store.ping()
        except StoreBusy as error:
            if not allow_unreachable:
                await store.close()
                raise
            log.warning("the database does not answer (%s); serving 503 until it does", error)
        except BaseException:
            await store.close()
            raise
        return store

    @asynccontextmanager
    async def acquire(self, *, bounded: bool = True) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection; any failure on it comes out as a domain error."""
        with translated():
            async with asyncio.timeout(self._deadline if bounded else None):
                async with self._pool.acquire(timeout=self._acquire_timeout) as connection:
                    try:
                        yield connection
                    except BROKEN:
                        _discard(connection)
                        raise
                    except WRITE_REFUSED as error:
                        self._write_failing = True
                        # A read-only session (a standby after failover, or one opened
                        # while the database was read-only) stays so: a new one may not.
                        if isinstance(error, pg.ReadOnlySQLTransactionError):
                            _discard(connection)
                        raise

    @asynccontextmanager
    async def transaction(self, *, bounded: bool = True) -> AsyncIterator[asyncpg.Connection]:
        """Committed on return, rolled back on raise."""
        async with self.acquire(bounded=bounded) as connection:
            try:
                # Inside the try: the FR lock can time out after BEGIN took effect.
                await connection.execute(begin_sql(self._lock_timeout_ms))
                yield connection
            except BaseException:
                await _rollback_quietly(connection)
                raise
            await connection.execute("COMMIT")
            self._write_failing = False

    async def find_token(self, token_hash: bytes) -> Principal | None:
        row = await self._token_lookups.run({"h": token_hash.hex()})
        return None if row is None else Principal(row[0], row[1], row[2])

    async def _find_tokens(self, payload: bytes) -> list[Any]:
        async with self.acquire() as connection:
            return list(await connection.fetch(PRINCIPALS_SQL, payload.decode()))

    async def revoked_token_count(self) -> int:
        async with self.acquire() as connection:
            count = await connection.fetchval(REVOKED_COUNT_SQL)
        return int(count)

    async def get_fulfillment_request(
        self, fr_id: int, principal: Principal
    ) -> FulfillmentRequest | None:
        sql = GET_SQL[principal.scope_column]
        async with self.acquire() as connection:
            rows = await connection.fetch(sql, fr_id, principal.scope_id)
        frs = frs_from_joined_rows(rows)
        return frs[0] if frs else None

    async def sync_accounting(self, fr_id: int, plan: AccountingPlan, audit: Audit) -> None:
        row = await self._batcher.run(batch_patch(fr_id, plan, audit, self._lock_timeout_ms))
        if row is not None and row[-1] == SYNC_LOCK_TIMEOUT:
            raise StoreBusy()  # it waited its lock timeout already: not a second time
        if row is None or row[-1].startswith(SYNC_FAILED):
            row = await self._sync_alone(fr_id, plan, audit)  # its error comes out as itself
        outcome = row[-1]
        if outcome == SYNC_OK:
            self._write_failing = False
            return
        # Refused: the plan raises the domain error from the state the function read.
        plan(None if outcome == SYNC_MISSING else state_from_row(row))
        raise RuntimeError(f"frsync_sync_accounting refused a valid PATCH ({outcome})")

    async def _sync_alone(self, fr_id: int, plan: AccountingPlan, audit: Audit) -> Any:
        async with self.acquire() as connection:
            return await connection.fetchrow(
                SYNC_SQL, *sync_args(fr_id, plan, audit, self._lock_timeout_ms)
            )

    async def _send_batch(self, payload: bytes) -> list[Any]:
        async with self.acquire() as connection:
            return list(await connection.fetch(BATCH_SQL, payload.decode()))

    async def accounting_history(
        self,
        fr_id: int,
        principal: Principal,
        *,
        limit: int = DEFAULT_HISTORY_LIMIT,
        before_id: int | None = None,
    ) -> list[HistoryEntry] | None:
        sql = HISTORY_SQL[principal.scope_column]
        newest = INT64_MAX if before_id is None else before_id - 1
        async with self.acquire() as connection:
            rows = await connection.fetch(sql, fr_id, principal.scope_id, newest, limit)
        if not rows:
            return None
        return [history_from_row(row) for row in rows if row[0] is not None]

    async def list_fulfillment_requests(
        self, principal: Principal, query: FrQuery
    ) -> list[FulfillmentRequest]:
        async with self.acquire() as connection:
            if not queries.count_first(query):
                sql, params = list_sql(principal, query)
                return frs_from_joined_rows(await connection.fetch(sql, *params))
            # The count and the page in one snapshot: a load between them would shift the page.
            async with connection.transaction(isolation="repeatable_read", readonly=True):
                total = await connection.fetchval(*self._count_sql(principal, query))
                sql, params = list_sql(principal, query, total)
                rows = await connection.fetch(sql, *params)
        return frs_from_joined_rows(rows)

    async def count_fulfillment_requests(self, principal: Principal, query: FrQuery) -> int:
        async with self.acquire() as connection:
            count = await connection.fetchval(*self._count_sql(principal, query))
        return int(count)

    @staticmethod
    def _count_sql(principal: Principal, query: FrQuery) -> tuple[Any, ...]:
        sql, params = queries.count_sql(principal, query, placeholder=dollar)
        return sql, *params

    def after_load(self, hook: Callable[[asyncpg.Connection], Awaitable[None]]) -> None:
        """Await `hook(connection)` at the end of every load, inside its transaction (how a
        feature records what a load left, without the store knowing the feature)."""
        self._after_load.append(hook)

    async def load(self, batches: Iterable[LoadData]) -> None:
        # Unbounded: a large load legitimately takes long (lock waits are still bounded).
        # executemany pipelines the rows; the FRs go as arrays, one statement per batch.
        async with self.transaction(bounded=False) as connection:
            with load_errors():
                for batch in batches:
                    statements = queries.load_statements(batch, placeholder=dollar, many=arrays)
                    for sql, rows in statements:
                        if rows:
                            await connection.executemany(sql, rows)
            for hook in self._after_load:
                await hook(connection)
            # Fresh statistics, or the planner takes the just-loaded tables for tiny ones
            # (autovacuum would analyze them only a minute or so later).
            await connection.execute(
                "ANALYZE fulfillment_requests, fulfillment_request_accounting,"
                " fulfillment_request_items"
            )

    async def create_token(
        self, token_hash: bytes, token_type: TokenType, scope_id: int, label: str | None
    ) -> int:
        async with self.acquire() as connection:
            token_id = await connection.fetchval(
                ISSUE_SQL[token_type], token_hash, token_type, scope_id, label, now_ms()
            )
        if token_id is None:
            raise NotFound(f"There is no {token_type} with id {scope_id}.")
        return int(token_id)

    async def revoke_token(self, token_id: int) -> bool:
        async with self.acquire() as connection:
            revoked = await connection.fetchval(REVOKE_SQL, now_ms(), token_id)
        return revoked is not None

    async def list_tokens(self) -> list[TokenInfo]:
        async with self.acquire() as connection:
            rows = await connection.fetch(ISSUED_SQL)
        return [TokenInfo(*row) for row in rows]

    async def ping(self) -> None:
        """The server answers; and, after a write was refused for lack of disk or a read-only
        server, it takes a tiny write again (tried only then, and rolled back)."""
        async with self.acquire() as connection:
            await connection.fetchval("SELECT 1")
            if self._write_failing:
                try:
                    await connection.execute(WRITE_PROBE_SQL)
                finally:
                    await _rollback_quietly(connection)
                self._write_failing = False

    async def close(self) -> None:
        # close() waits for connections in use; a request stuck past its deadline must not
        # hold shutdown hostage. PATCH batches still in flight are cancelled (rolled back).
        await self._batcher.close()
        await self._token_lookups.close()
        try:
            await asyncio.wait_for(self._pool.close(), self._deadline)
        except TimeoutError:
            self._pool.terminate()


# One row in a real table, in a transaction that is always rolled back; a read-only server
# refuses the INSERT itself, whether or not the row could be written.
WRITE_PROBE_SQL = (
    "BEGIN; INSERT INTO accounts (id, name) VALUES (-1, 'frsync write probe')"
    " ON CONFLICT (id) DO NOTHING"
)


def _discard(connection: asyncpg.Connection) -> None:
    # Released as is, a connection in an unknown protocol state could fail the next request
    # too (our reset hook sends nothing that would find out); a new one costs a connect.
    with suppress(Exception):
        connection.terminate()


async def _rollback_quietly(connection: asyncpg.Connection) -> None:
    # The error being raised matters more than a failed ROLLBACK: the connection may be the
    # thing that broke, and may even be back in the pool already (asyncpg releases a
    # connection the moment it closes). On release asyncpg rolls back again if it must, or
    # discards the connection.
    with suppress(Exception):
        if not connection.is_closed():
            await connection.execute("ROLLBACK")
