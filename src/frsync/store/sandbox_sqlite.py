"""The baseline a load records, on SQLite (see sandbox_baseline)."""

from __future__ import annotations

import sqlite3

from frsync.store.sandbox_baseline import TAKE_BASELINE


def take_baseline(db: sqlite3.Connection) -> None:
    """Inside a load's transaction: remember what the load leaves, for a sandbox reset."""
    for statement in TAKE_BASELINE:
        db.execute(statement)
