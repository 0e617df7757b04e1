"""Removed tenants' rows, deleted after the reset that removed them returned.

A reset removes every tenant at once (their sandbox_tenants rows go, so their tokens are
refused from the next request on), but deleting 10,000 tenants' tokens, FRs and accounts
fires a foreign-key check per row: seconds on PostgreSQL. That is done here instead, a chunk
of tenants per short transaction, in the background of the worker that reset (and at start,
for anything a stopped worker left), so no reset and no request waits for it. A chunk that
finds the tables busy (a reset or a load holds them past the lock timeout) is tried again
a little later, not left for the next reset.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from frsync.errors import StoreBusy
from frsync.sandbox.store import SandboxStore

log = logging.getLogger("frsync.sandbox")
BUSY_RETRY_SECONDS = (0.5, 1.0, 2.0, 5.0)  # then every 5 s: waits after busy tries in a row


class Purger:
    def __init__(self, store: SandboxStore) -> None:
        self._store = store
        self._task: asyncio.Task[None] | None = None

    def kick(self) -> None:
        """Purge in the background, unless a purge is already running here."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run())

    async def wait(self) -> None:
        """Until the running purge (if any) is done."""
        if self._task is not None:
            await asyncio.shield(self._task)

    async def _run(self) -> None:
        busy = 0
        while True:  # each chunk's transaction is awaited: requests run in between
            try:
                purged = await self._store.purge_removed_tenants()
            except StoreBusy:
                pause = BUSY_RETRY_SECONDS[min(busy, len(BUSY_RETRY_SECONDS) - 1)]
                busy += 1
                await asyncio.sleep(pause)
                continue
            except Exception:
                # Left for the next reset or start to finish; never worth a failed request.
                log.warning("purging removed sandbox tenants stopped; the next reset resumes it")
                return
            if not purged:
                return
            busy = 0

    async def stop(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
