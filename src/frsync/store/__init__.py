"""The core store: fulfillment requests, their items, tokens and the accounting history.

Opened through `frsync.backends`, the one table of URL schemes, which also yields the
sandbox's and the console's SQL on the same connections.
"""

from __future__ import annotations

from frsync.store.base import Audit, FrQuery, LoadData, Store, TokenInfo


def migrate(url: str) -> None:
    """Create or upgrade the schema at `url` to the latest revision. Blocking; from async
    code call it through `asyncio.to_thread`."""
    # Alembic takes half a second to import: only commands that migrate should pay for it.
    from frsync.store.upgrade import upgrade

    upgrade(url)


__all__ = ["Audit", "FrQuery", "LoadData", "Store", "TokenInfo", "migrate"]
