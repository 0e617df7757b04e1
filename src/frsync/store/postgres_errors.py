"""How PostgreSQL's failures become domain errors, so none of them reaches the API as a 500.

    transient: "try again shortly" → StoreBusy (503 + Retry-After)
      busy         pool exhausted or too slow (TimeoutError), lock_timeout, query cancelled,
                   deadlock or serialization failure, too many connections, a cached plan
                   invalidated by a migration
      unreachable  refused / reset / terminated connections (OSError, class 08, admin or
                   crash shutdown, "cannot connect now"), a closed or closing connection or
                   pool (InterfaceError), a connection that died idle in the pool
                   (InternalClientError), a read-only server mid-failover
    the caller's data: → InvalidRequest (400)
      bad value    text with NUL, a number out of range, a string over its column's length
                   (asyncpg raises DataError for these whether it or the server notices)

Anything else (a missing table, a wrong password, a bug) is left alone: it is not something a
retry fixes, and hiding it behind a 503 would only make it harder to find.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

from asyncpg import exceptions as pg

from frsync.errors import InvalidRequest, StoreBusy
from frsync.store.base import MISSING_PARENT

log = logging.getLogger("frsync.store")

_WHY = "text containing U+0000, a number out of range, or a string that is too long"
BAD_VALUE = f"A value cannot be stored ({_WHY})."
BAD_LOAD_VALUE = f"A value cannot be stored ({_WHY}); nothing was loaded."

_BUSY: tuple[type[BaseException], ...] = (
    TimeoutError,  # before OSError, whose subclass it is
    pg.LockNotAvailableError,
    pg.QueryCanceledError,
    pg.TransactionRollbackError,
    pg.InsufficientResourcesError,
    pg.InvalidCachedStatementError,
    pg.OutdatedSchemaCacheError,
)
# The connection itself is gone or in an unknown state: it must not serve another request.
BROKEN: tuple[type[BaseException], ...] = (
    OSError,
    pg.PostgresConnectionError,
    pg.AdminShutdownError,
    pg.CrashShutdownError,
    pg.CannotConnectNowError,
    pg.InterfaceError,
    # asyncpg's "cannot switch to state …": a pooled connection whose server went away
    # while it sat idle, handed out before asyncpg saw the socket close.
    pg.InternalClientError,
)
_UNREACHABLE = (*BROKEN, pg.OperatorInterventionError, pg.ReadOnlySQLTransactionError)
# Writes refused by the server's state, not the request: disk full (53100, a class-53 "busy"
# error), a read-only server or session (25006). The store then probes before saying ready.
WRITE_REFUSED: tuple[type[BaseException], ...] = (
    pg.DiskFullError,
    pg.ReadOnlySQLTransactionError,
)


@contextmanager
def translated() -> Iterator[None]:
    """Re-raise PostgreSQL and network failures as StoreBusy or InvalidRequest."""
    try:
        yield
    except pg.DataError as error:
        raise InvalidRequest(BAD_VALUE) from error
    except _BUSY as error:
        _log(error, "busy")
        raise StoreBusy() from error
    except _UNREACHABLE as error:
        _log(error, "unreachable")
        raise StoreBusy("The store is unreachable; try again shortly.") from error


@contextmanager
def load_errors() -> Iterator[None]:
    """A load names rows that do not exist, or holds a value PostgreSQL refuses."""
    try:
        yield
    except pg.ForeignKeyViolationError as error:
        raise InvalidRequest(MISSING_PARENT) from error
    except pg.DataError as error:
        raise InvalidRequest(BAD_LOAD_VALUE) from error


_LOG_EVERY = 1.0  # seconds; an outage fails every request, and one line a second tells it
_last_logged: dict[type[BaseException], tuple[float, int]] = {}


def _log(error: BaseException, kind: str) -> None:
    # One line, no traceback: these are expected under load or during an outage, and the
    # class name is what an operator needs (LockNotAvailableError, AdminShutdownError, …).
    now = time.monotonic()
    last, skipped = _last_logged.get(type(error), (-_LOG_EVERY, 0))
    if now - last < _LOG_EVERY:
        _last_logged[type(error)] = (last, skipped + 1)
        return
    _last_logged[type(error)] = (now, 0)
    more = f" (and {skipped} more like it)" if skipped else ""
    reason = str(error) or "timed out"
    log.warning("PostgreSQL %s: %s: %s%s", kind, type(error).__name__, reason, more)
