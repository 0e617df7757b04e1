"""The baseline a load records, on PostgreSQL (see sandbox_baseline)."""

from __future__ import annotations

import asyncpg

from frsync.store.sandbox_baseline import TAKE_BASELINE


async def take_baseline(connection: asyncpg.Connection) -> None:
    """Inside a load's transaction: remember what the load leaves, for a sandbox reset."""
    for statement in TAKE_BASELINE:
        await connection.execute(statement)
    # Fresh statistics, or the planner takes the just-loaded tables for tiny ones and a reset
    # of a few FRs scans every item (autovacuum would analyze them only a minute or so later).
    await connection.execute(
        "ANALYZE fulfillment_requests, fulfillment_request_items, sandbox_baseline_frs,"
        " sandbox_baseline_items"
    )
