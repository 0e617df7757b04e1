"""Stores, chosen by URL scheme: `sqlite:///path.db` or `postgresql://…`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from frsync.config import Settings
from frsync.store.base import Audit, FrQuery, LoadData, Store, TokenInfo


def migrate(url: str) -> None:
    """Create or upgrade the schema at `url` to the latest revision. Blocking; from async
    code call it through `asyncio.to_thread`."""
    # Alembic takes half a second to import: only commands that migrate should pay for it.
    from frsync.store.upgrade import upgrade

    upgrade(url)


# Each backend is imported only when its URL is used: a SQLite user needs no asyncpg.
async def _open_sqlite(settings: Settings) -> Store:
    from frsync.store.sqlite import SqliteStore

    return SqliteStore.from_url(settings.database_url, busy_timeout=settings.store_busy_timeout)


async def _open_postgres(settings: Settings) -> Store:
    from frsync.store.postgres import PostgresStore

    return await PostgresStore.open(settings)


_BACKENDS: dict[str, Callable[[Settings], Awaitable[Store]]] = {
    "sqlite": _open_sqlite,
    "postgresql": _open_postgres,
    "postgres": _open_postgres,
}


def scheme_of(url: str) -> str:
    scheme = url.split(":", 1)[0].split("+", 1)[0].lower()
    if scheme not in _BACKENDS:
        known = ", ".join(sorted(_BACKENDS))
        raise ValueError(f"unsupported database URL scheme {scheme!r} (use one of: {known})")
    return scheme


async def open_store(settings: Settings) -> Store:
    """Open the store named by `settings.database_url` (the schema must be migrated)."""
    return await _BACKENDS[scheme_of(settings.database_url)](settings)


__all__ = ["Audit", "FrQuery", "LoadData", "Store", "TokenInfo", "migrate", "open_store"]
