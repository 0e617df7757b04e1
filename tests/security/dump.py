"""A logical dump of the whole database: every table, every row, ordered.

"Byte-for-byte unchanged" is defined on this dump, not on the files: SQLite rewrites pages
and checkpoints its WAL on its own schedule, so file bytes change without any row changing,
and PostgreSQL's files are not ours to read. Two equal dumps mean the same rows, column by
column, in every table (the migration table included).
"""

from __future__ import annotations

import sqlite3
from typing import Any

Dump = dict[str, list[tuple[Any, ...]]]
# Per-token usage counters (the console's Tokens view) record that a request was made, like
# an access log; every admitted request adds to them, rejected or not, by design.
USAGE_TABLES = frozenset({"token_usage", "token_last_used"})


class Dumper:
    """One connection kept open for the test, so dumping before and after each request is
    cheap (a millisecond or two on the fixture's few dozen rows)."""

    def __init__(self, database_url: str) -> None:
        self.url = database_url
        self.store = "sqlite" if database_url.startswith("sqlite") else "postgresql"
        self._sqlite: sqlite3.Connection | None = None
        self._pg: Any = None

    async def open(self) -> Dumper:
        if self.store == "sqlite":
            path = self.url.removeprefix("sqlite:///")
            self._sqlite = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
        else:
            import asyncpg

            self._pg = await asyncpg.connect(self.url)
        return self

    async def close(self) -> None:
        if self._sqlite is not None:
            self._sqlite.close()
        if self._pg is not None:
            await self._pg.close()

    async def dump(self) -> Dump:
        if self._sqlite is not None:
            db = self._sqlite
            names = [r[0] for r in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
            )]  # fmt: skip
            # Every table's first column is its primary key, so ORDER BY 1 is a total order.
            return {n: db.execute(f'SELECT * FROM "{n}" ORDER BY 1').fetchall() for n in names}
        names = [
            r[0]
            for r in await self._pg.fetch(
                "SELECT table_name FROM information_schema.tables"
                " WHERE table_schema = 'public' ORDER BY table_name"
            )
        ]
        return {
            n: [tuple(r) for r in await self._pg.fetch(f'SELECT * FROM "{n}" ORDER BY 1')]
            for n in names
        }


def rows_changed(before: Dump, after: Dump) -> int:
    """How many rows differ between two dumps (added, removed or changed, each counted)."""
    changed = 0
    for table in (before.keys() | after.keys()) - USAGE_TABLES:
        old, new = set(before.get(table, [])), set(after.get(table, []))
        changed += len(old ^ new)
    return changed


AccountingView = tuple[dict[int, tuple[Any, ...]], dict[int, str | None], dict[int, int]]


async def accounting_view(dumper: Dumper) -> AccountingView:
    """The accounting columns of every FR, every item's external id, and history rows per
    FR, straight from the database (read by column name, so it holds for both stores)."""
    fr_sql = (
        "SELECT id, accounting_synced, external_accounting_id, accounting_error,"
        " accounting_synced_at FROM fulfillment_request_accounting"
    )
    item_sql = "SELECT id, external_accounting_item_id FROM fulfillment_request_items"
    history_sql = (
        "SELECT fulfillment_request_id, COUNT(*) FROM accounting_history"
        " GROUP BY fulfillment_request_id"
    )
    if dumper._sqlite is not None:
        db = dumper._sqlite
        frs, items, history = (db.execute(q).fetchall() for q in (fr_sql, item_sql, history_sql))
    else:
        frs, items, history = [
            [tuple(r) for r in await dumper._pg.fetch(q)] for q in (fr_sql, item_sql, history_sql)
        ]
    fr_view = {r[0]: (None if r[1] is None else bool(r[1]), *r[2:]) for r in frs}
    return fr_view, {r[0]: r[1] for r in items}, {r[0]: r[1] for r in history}
