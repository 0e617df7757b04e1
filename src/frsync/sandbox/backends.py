"""The sandbox's SQL for the app's store, chosen by the store's kind.

Apart from `sandbox/store.py` (the interface both backends implement), so that neither backend
module imports the module that imports it. Each is imported only when used: PostgreSQL's needs
asyncpg.
"""

from __future__ import annotations

from frsync.sandbox.store import SandboxStore
from frsync.store import Store


def open_sandbox_store(store: Store) -> SandboxStore:
    """The sandbox store working through `store` (the API's)."""
    if store.kind == "sqlite":
        from frsync.sandbox.store_sqlite import SqliteSandboxStore
        from frsync.store.sqlite import SqliteStore

        if isinstance(store, SqliteStore):
            return SqliteSandboxStore(store)
    elif store.kind == "postgresql":
        from frsync.sandbox.store_postgres import PostgresSandboxStore
        from frsync.store.postgres import PostgresStore

        if isinstance(store, PostgresStore):
            return PostgresSandboxStore(store)
    raise ValueError(f"the sandbox has no SQL for this store ({store.kind})")
