"""The backends, chosen by the database URL's scheme: `sqlite:///path.db` or `postgresql://…`.

One table, and each row opens a database's three parts together: the core store, and the
sandbox's and the console's SQL on its connections. It sits above `store/`, `sandbox/` and
`console/` so that the core store imports neither feature: the sandbox hooks into loading
here (every load records what a sandbox reset goes back to), whatever command loads.

Each backend is imported only when its URL is used: a SQLite user needs no asyncpg.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from frsync.config import Settings
from frsync.console.store import ConsoleStore
from frsync.sandbox.store import SandboxStore
from frsync.store import Store


@dataclass(frozen=True, slots=True)
class Backend:
    """One database's parts, on the same connections."""

    store: Store
    sandbox: SandboxStore
    console: ConsoleStore


async def _sqlite(settings: Settings, allow_unreachable: bool) -> Backend:
    from frsync.console.store_sqlite import ConsoleSqlite
    from frsync.sandbox.store_sqlite import SqliteSandboxStore, take_baseline
    from frsync.store.sqlite import SqliteStore

    store = SqliteStore.from_url(
        settings.database_url,
        busy_timeout=settings.store_busy_timeout,
        write_socket=settings.sqlite_write_socket,
    )
    store.after_load(take_baseline)
    return Backend(store, SqliteSandboxStore(store), ConsoleSqlite(store))


async def _postgres(settings: Settings, allow_unreachable: bool) -> Backend:
    from frsync.console.store_postgres import ConsolePostgres
    from frsync.sandbox.store_postgres import PostgresSandboxStore, take_baseline
    from frsync.store.postgres import PostgresStore

    store = await PostgresStore.open(settings, allow_unreachable=allow_unreachable)
    store.after_load(take_baseline)
    return Backend(store, PostgresSandboxStore(store), ConsolePostgres(store))


_BACKENDS: dict[str, Callable[[Settings, bool], Awaitable[Backend]]] = {
    "sqlite": _sqlite,
    "postgresql": _postgres,
    "postgres": _postgres,
}


def scheme_of(url: str) -> str:
    """The backend's name in `url`; a ValueError naming the known ones if there is none."""
    scheme = url.split(":", 1)[0].split("+", 1)[0].lower()
    if scheme not in _BACKENDS:
        known = ", ".join(sorted(_BACKENDS))
        raise ValueError(f"unsupported database URL scheme {scheme!r} (use one of: {known})")
    return scheme


async def open_backend(settings: Settings, *, allow_unreachable: bool = False) -> Backend:
    """Open the database named by `settings.database_url` (the schema must be migrated);
    closing `.store` closes all three parts. A database server that does not answer is an
    error (StoreBusy), unless `allow_unreachable`: a serving process opens anyway and
    answers 503 until it does."""
    open_ = _BACKENDS[scheme_of(settings.database_url)]
    return await open_(settings, allow_unreachable)


async def open_store(settings: Settings) -> Store:
    """The core store alone, for commands that neither serve the sandbox nor the console
    (its loads still record the sandbox's baseline)."""
    return (await open_backend(settings)).store


__all__ = ["Backend", "open_backend", "open_store", "scheme_of"]
