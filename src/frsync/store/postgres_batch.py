"""Requests on PostgreSQL sent in batches: those that wait while others are in flight go as one
statement. The PATCHes go as `frsync_sync_accounting_batch($1::jsonb)` (migration 0007), each
still its own all-or-nothing unit; the token cache's lookups as one indexed join
(store/postgres.py).

The PATCH function applies them in FR id order (the order every writer locks in, so two batches
never deadlock), each in a subtransaction: a lock timeout or an error undoes that PATCH
alone and returns `failed:<SQLSTATE>` for it, and the store re-runs that one by itself,
where its error comes out as itself (StoreBusy for a lock timeout). The statement is its own
transaction: every answer is given after its batch's commit, one round trip and one commit
(one WAL flush) per batch. A batch of one is sent at once: batching costs no waiting, it only
groups what is already waiting while `senders` statements are in flight.
"""

from __future__ import annotations

import asyncio
import copy
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from frsync.errors import StoreBusy

MAX_BATCH = 32
_encode = msgspec.json.Encoder().encode

Send = Callable[[bytes], Awaitable[list[Any]]]  # the batch as JSON → rows (n first)


class Batcher:
    """Requests of one kind that wait while `senders` statements are in flight, sent as one
    statement: the PATCHes, and the token cache's lookups (store/postgres.py)."""

    def __init__(
        self, send: Send, senders: int, queue_timeout: float, max_batch: int = MAX_BATCH
    ) -> None:
        self._send = send
        self._queue_timeout = queue_timeout  # the longest a PATCH waits to be sent
        self._max_senders = max(1, senders)
        self._max_batch = max_batch
        self._senders = 0
        self._waiting: deque[tuple[dict[str, Any], asyncio.Future[Any]]] = deque()
        self._tasks: set[asyncio.Task[None]] = set()
        self._in_flight: dict[asyncio.Task[None], list[asyncio.Future[Any]]] = {}
        self._closed = False

    async def run(self, patch: dict[str, Any]) -> Any:
        """The statement's row for this request (its `n` dropped; None: no row), after its
        batch's statement ended (a PATCH's: committed)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._waiting.append((patch, future))
        if self._senders < self._max_senders:
            self._start_sender()
        # A plain timer: asyncio.wait_for (and the shield it needed) cost several times more.
        timer = loop.call_at(loop.time() + self._queue_timeout, self._expire, future)
        try:
            return await future
        except asyncio.CancelledError:
            self._abandon(future)
            raise
        finally:
            timer.cancel()

    def _expire(self, future: asyncio.Future[Any]) -> None:
        """Never sent within the queue timeout (the pool is exhausted): 503. A sent PATCH
        waits on: its statement has deadlines of its own."""
        if not future.done() and not self._sent(future):
            future.set_exception(StoreBusy())

    def _sent(self, future: asyncio.Future[Any]) -> bool:
        return any(future in futures for futures in self._in_flight.values())

    def _start_sender(self) -> None:
        self._senders += 1
        task = asyncio.create_task(self._drain())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _abandon(self, future: asyncio.Future[Any]) -> None:
        """A cancelled request (shutdown, a client gone): not yet sent, its PATCH never will
        be; sent, its batch's statement is cancelled (rolled back) once every request of
        that batch is gone, as a lone PATCH's statement was before batching."""
        future.cancel()
        for task, futures in self._in_flight.items():
            if future in futures and all(f.cancelled() for f in futures):
                task.cancel()

    async def _drain(self) -> None:
        task = asyncio.current_task()
        assert task is not None
        try:
            while self._waiting:
                count = min(self._max_batch, len(self._waiting))
                batch = [self._waiting.popleft() for _ in range(count)]
                batch = [(patch, future) for patch, future in batch if not future.done()]
                if batch:
                    self._in_flight[task] = [future for _, future in batch]
                    await self._send_batch(batch)
                    del self._in_flight[task]
        finally:
            self._in_flight.pop(task, None)
            self._senders -= 1
            if self._waiting and not self._closed:
                self._start_sender()  # this one was cancelled: the rest still go

    async def close(self) -> None:
        """Cancel what is in flight (rolled back) and what waits."""
        self._closed = True
        for _, future in self._waiting:
            future.cancel()
        self._waiting.clear()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _send_batch(self, batch: list[tuple[dict[str, Any], asyncio.Future[Any]]]) -> None:
        payload = [patch | {"n": n} for n, (patch, _) in enumerate(batch)]
        try:
            rows = await self._send(_encode(payload))
        except asyncio.CancelledError:  # shutting down: nobody gets an answer
            for _, future in batch:
                future.cancel()
            raise
        except Exception as error:  # one exception object per waiting task
            for index, (_, future) in enumerate(batch):
                if not future.done():
                    future.set_exception(error if index == 0 else copy.copy(error))
            return
        by_n = {row[0]: row[1:] for row in rows}
        for n, (_, future) in enumerate(batch):
            if not future.done():
                future.set_result(by_n.get(n))
