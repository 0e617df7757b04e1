"""`AsyncClient`: the asyncio twin of `Client`, method for method, on `httpx.AsyncClient`.

A thin shell: it performs the core's steps with `httpx.AsyncClient.send` and `asyncio.sleep`.
Pacing, retries, errors and decoding are the core's (`_core.py`), shared with `Client`.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from types import TracebackType
from typing import Self, TypeVar, Unpack

import httpx

from frsync.client import _calls as calls
from frsync.client._base import BaseClient
from frsync.client._bucket import Clock
from frsync.client._core import RetryHook, Send
from frsync.client._filters import FulfillmentRequestFilters
from frsync.client._models import (
    UNSET,
    AccountingSyncRequest,
    FulfillmentRequest,
    HistoryEntry,
    UnsetType,
)
from frsync.client._retry import RetryPolicy
from frsync.contract import MAX_HISTORY_LIMIT, MAX_PAGE_SIZE

__all__ = ["AsyncClient"]

T = TypeVar("T")


class AsyncClient(BaseClient):
    """The asyncio client: `Client`'s methods, arguments, models, errors, retries and defaults.

    ```python
    async with AsyncClient(token) as client:
        await client.sync_accounting(221, accounting_synced=True)
        async for fr in client.iter_fulfillment_requests(accounting_synced=False):
            ...
    ```

    Safe to share between tasks (and with `Client`s of the same token in other threads):
    they all take turns from one bucket per token and base URL.
    """

    def __init__(
        self,
        token: str,
        *,
        base_url: str | None = None,
        timeout: float | httpx.Timeout = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        retry: RetryPolicy | None = None,
        pace: bool = True,
        clock: Clock = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        jitter: random.Random | None = None,
        on_retry: RetryHook | None = None,
    ) -> None:
        super().__init__(
            token,
            base_url=base_url,
            retry=retry,
            pace=pace,
            clock=clock,
            jitter=jitter,
            on_retry=on_retry,
        )
        self._sleep = sleep
        self._http = httpx.AsyncClient(
            timeout=timeout,
            transport=transport,
            **self._http_options(token),  # type: ignore[arg-type]
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _run(self, call: calls.ApiCall[T]) -> T:
        """Perform the core's steps for `call`: send on the wire, or sleep."""
        steps = self._core.call(call.build(self._http), call.decode)
        try:
            step = next(steps)
            while True:
                if not isinstance(step, Send):
                    await self._sleep(step.seconds)
                    step = steps.send(None)
                    continue
                try:
                    answer: httpx.Response | httpx.TransportError = await self._http.send(
                        step.request
                    )
                except httpx.TransportError as exc:
                    answer = exc
                step = steps.send(answer)
        except StopIteration as done:
            result: T = done.value
            return result
        finally:
            steps.close()

    # -- API actions (documented on `Client`) -------------------------------------------------

    async def sync_accounting(
        self,
        fulfillment_request_id: int,
        *,
        accounting_synced: bool | UnsetType | None = UNSET,
        external_accounting_id: str | UnsetType | None = UNSET,
        accounting_error: str | UnsetType | None = UNSET,
        items: calls.ItemsArgument = UNSET,
    ) -> str | None:
        """Record the accounting-sync outcome; a field left out stays unchanged, None clears it."""
        request = calls.sync_request(
            accounting_synced=accounting_synced,
            external_accounting_id=external_accounting_id,
            accounting_error=accounting_error,
            items=items,
        )
        return await self.send_accounting_sync(fulfillment_request_id, request)

    async def send_accounting_sync(
        self, fulfillment_request_id: int, request: AccountingSyncRequest
    ) -> str | None:
        """PATCH a prepared body as it is."""
        return await self._run(calls.send_accounting_sync(fulfillment_request_id, request))

    async def get_fulfillment_request(self, fulfillment_request_id: int) -> FulfillmentRequest:
        return await self._run(calls.get_fulfillment_request(fulfillment_request_id))

    async def list_fulfillment_requests(
        self,
        *,
        page_number: int | None = None,
        page_size: int | None = None,
        since_id: int | None = None,
        **filters: Unpack[FulfillmentRequestFilters],
    ) -> list[FulfillmentRequest]:
        """One page of fulfillment requests, ordered by id."""
        call = calls.list_fulfillment_requests(page_number, page_size, since_id, filters)
        return await self._run(call)

    async def iter_pages(
        self,
        *,
        page_size: int = MAX_PAGE_SIZE,
        since_id: int = 0,
        **filters: Unpack[FulfillmentRequestFilters],
    ) -> AsyncIterator[list[FulfillmentRequest]]:
        """Every matching fulfillment request, a page at a time, fetched as you go."""
        cursor: int | None = since_id
        while cursor is not None:
            page = await self.list_fulfillment_requests(
                page_size=page_size, since_id=cursor, **filters
            )
            if page:
                yield page
            cursor = calls.next_since_id(page)

    async def iter_fulfillment_requests(
        self,
        *,
        page_size: int = MAX_PAGE_SIZE,
        since_id: int = 0,
        **filters: Unpack[FulfillmentRequestFilters],
    ) -> AsyncIterator[FulfillmentRequest]:
        """Every matching fulfillment request, ordered by id, fetched a page at a time."""
        async for page in self.iter_pages(page_size=page_size, since_id=since_id, **filters):
            for fr in page:
                yield fr

    async def count_fulfillment_requests(self, **filters: Unpack[FulfillmentRequestFilters]) -> int:
        return await self._run(calls.count_fulfillment_requests(filters))

    async def accounting_history(
        self,
        fulfillment_request_id: int,
        *,
        limit: int | None = None,
        before_id: int | None = None,
    ) -> list[HistoryEntry]:
        """One page of history entries, newest first, older than `before_id`."""
        return await self._run(calls.accounting_history(fulfillment_request_id, limit, before_id))

    async def iter_accounting_history(
        self, fulfillment_request_id: int, *, page_size: int = MAX_HISTORY_LIMIT
    ) -> AsyncIterator[HistoryEntry]:
        """Every history entry of a fulfillment request, newest first, a page at a time."""
        before_id: int | None = None
        while page := await self.accounting_history(
            fulfillment_request_id, limit=page_size, before_id=before_id
        ):
            for entry in page:
                yield entry
            if (before_id := calls.next_before_id(page)) is None:
                return
