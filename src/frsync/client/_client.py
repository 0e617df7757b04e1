"""`Client`: the blocking accounting-sync client, one method per API action.

A thin shell: it performs the core's steps with `httpx.Client.send` and `time.sleep`.
`AsyncClient` (`_async_client.py`) is its asyncio twin, method for method.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
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

__all__ = ["Client"]

T = TypeVar("T")


class Client(BaseClient):
    """Client for the Flxpoint fulfillment-request accounting-sync API (or `frsync serve`).

    `base_url` defaults to $FRSYNC_BASE_URL, else `http://127.0.0.1:8000` (a local
    `frsync serve`); pass `FLXPOINT_BASE_URL` (or set the variable) for the real API.

    Requests are paced by a client-side copy of the token's rate-limit bucket, shared by
    every thread using this client and every client of the same token in the process, and
    retried on 429, 5xx and connection errors (see `RetryPolicy`). Safe to share between
    threads. Use it as a context manager, or call `close()`.
    """

    def __init__(
        self,
        token: str,
        *,
        base_url: str | None = None,
        timeout: float | httpx.Timeout = 30.0,
        transport: httpx.BaseTransport | None = None,
        retry: RetryPolicy | None = None,
        pace: bool = True,
        clock: Clock = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
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
        self._http = httpx.Client(
            timeout=timeout,
            transport=transport,
            **self._http_options(token),  # type: ignore[arg-type]
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _run(self, call: calls.ApiCall[T]) -> T:
        """Perform the core's steps for `call`: send on the wire, or sleep."""
        steps = self._core.call(call.build(self._http), call.decode)
        try:
            step = next(steps)
            while True:
                if not isinstance(step, Send):
                    self._sleep(step.seconds)
                    step = steps.send(None)
                    continue
                try:
                    answer: httpx.Response | httpx.TransportError = self._http.send(step.request)
                except httpx.TransportError as exc:
                    answer = exc
                step = steps.send(answer)
        except StopIteration as done:
            result: T = done.value
            return result
        finally:
            steps.close()

    # -- API actions -------------------------------------------------------------------------

    def sync_accounting(
        self,
        fulfillment_request_id: int,
        *,
        accounting_synced: bool | UnsetType | None = UNSET,
        external_accounting_id: str | UnsetType | None = UNSET,
        accounting_error: str | UnsetType | None = UNSET,
        items: calls.ItemsArgument = UNSET,
    ) -> str | None:
        """Record the accounting-sync outcome; a field left out stays unchanged, None clears it.

        `items` is a list of `AccountingSyncItem`, or a mapping of item id to its external id.
        Returns the request id the change is recorded under in the history, when the API
        sends one (`X-Request-Id`).
        """
        request = calls.sync_request(
            accounting_synced=accounting_synced,
            external_accounting_id=external_accounting_id,
            accounting_error=accounting_error,
            items=items,
        )
        return self.send_accounting_sync(fulfillment_request_id, request)

    def send_accounting_sync(
        self, fulfillment_request_id: int, request: AccountingSyncRequest
    ) -> str | None:
        """PATCH a prepared body as it is (what `frsync push` sends for each row)."""
        return self._run(calls.send_accounting_sync(fulfillment_request_id, request))

    def get_fulfillment_request(self, fulfillment_request_id: int) -> FulfillmentRequest:
        return self._run(calls.get_fulfillment_request(fulfillment_request_id))

    def list_fulfillment_requests(
        self,
        *,
        page_number: int | None = None,
        page_size: int | None = None,
        since_id: int | None = None,
        **filters: Unpack[FulfillmentRequestFilters],
    ) -> list[FulfillmentRequest]:
        """One page of fulfillment requests, ordered by id."""
        call = calls.list_fulfillment_requests(page_number, page_size, since_id, filters)
        return self._run(call)

    def iter_pages(
        self,
        *,
        page_size: int = MAX_PAGE_SIZE,
        since_id: int = 0,
        **filters: Unpack[FulfillmentRequestFilters],
    ) -> Iterator[list[FulfillmentRequest]]:
        """Every matching fulfillment request, a page at a time, fetched as you go
        (paged by `sinceId`: see `next_since_id`)."""
        cursor: int | None = since_id
        while cursor is not None:
            page = self.list_fulfillment_requests(page_size=page_size, since_id=cursor, **filters)
            if page:
                yield page
            cursor = calls.next_since_id(page)

    def iter_fulfillment_requests(
        self,
        *,
        page_size: int = MAX_PAGE_SIZE,
        since_id: int = 0,
        **filters: Unpack[FulfillmentRequestFilters],
    ) -> Iterator[FulfillmentRequest]:
        """Every matching fulfillment request, ordered by id, fetched a page at a time."""
        for page in self.iter_pages(page_size=page_size, since_id=since_id, **filters):
            yield from page

    def count_fulfillment_requests(self, **filters: Unpack[FulfillmentRequestFilters]) -> int:
        return self._run(calls.count_fulfillment_requests(filters))

    def accounting_history(
        self,
        fulfillment_request_id: int,
        *,
        limit: int | None = None,
        before_id: int | None = None,
    ) -> list[HistoryEntry]:
        """One page of the applied accounting-sync requests of a fulfillment request, newest
        first: `limit` entries (server default 20, at most 100) older than `before_id`.

        For the next page pass the last entry's `id` as `before_id`; an empty or short page
        is the end. `iter_accounting_history` does that for you.
        """
        return self._run(calls.accounting_history(fulfillment_request_id, limit, before_id))

    def iter_accounting_history(
        self, fulfillment_request_id: int, *, page_size: int = MAX_HISTORY_LIMIT
    ) -> Iterator[HistoryEntry]:
        """Every history entry of a fulfillment request, newest first, a page at a time
        (paged by `beforeId`, so entries added while you read do not shift the pages)."""
        before_id: int | None = None
        while page := self.accounting_history(
            fulfillment_request_id, limit=page_size, before_id=before_id
        ):
            yield from page
            if (before_id := calls.next_before_id(page)) is None:
                return
