"""The console's SQL for the app's store, chosen by the store's kind.

Apart from `console/store.py` (the interface both backends implement), so that neither backend
module imports the module that imports it. Each is imported only when used: PostgreSQL's needs
asyncpg.
"""

from __future__ import annotations

from frsync.console.store import ConsoleStore
from frsync.store import Store


def open_console_store(store: Store) -> ConsoleStore:
    """The console's queries on the same connections as `store`."""
    if store.kind == "sqlite":
        from frsync.console.store_sqlite import ConsoleSqlite
        from frsync.store.sqlite import SqliteStore

        if isinstance(store, SqliteStore):
            return ConsoleSqlite(store)
    elif store.kind == "postgresql":
        from frsync.console.store_postgres import ConsolePostgres
        from frsync.store.postgres import PostgresStore

        if isinstance(store, PostgresStore):
            return ConsolePostgres(store)
    raise ValueError(f"the console has no SQL for this store ({store.kind})")
