"""`Client`: the synchronous accounting-sync client, one method per API action."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterator, Mapping, Sequence
from types import TracebackType
from typing import Self, TypeVar, Unpack

import httpx
import msgspec

from frsync import __version__
from frsync.client._bucket import ClientBucket, Clock, Sleep
from frsync.client._errors import UnexpectedResponseError
from frsync.client._filters import FulfillmentRequestFilters, query_params
from frsync.client._models import (
    UNSET,
    AccountingSyncItem,
    AccountingSyncRequest,
    Count,
    FulfillmentRequest,
    HistoryEntry,
    UnsetType,
)
from frsync.client._retry import RetryPolicy
from frsync.client._sender import ClientStats, RetryHook, Sender
from frsync.contract import MAX_HISTORY_LIMIT, MAX_PAGE_SIZE

__all__ = [
    "BASE_URL_VARIABLE",
    "DEFAULT_BASE_URL",
    "FLXPOINT_BASE_URL",
    "Client",
    "base_url_from_env",
]

# One deliberate default for the library and the commands: $FRSYNC_BASE_URL, else a local
# `frsync serve`. Talking to the real API is always a choice someone wrote down, so a
# connector under development never writes to production by accident.
BASE_URL_VARIABLE = "FRSYNC_BASE_URL"
DEFAULT_BASE_URL = "http://127.0.0.1:8000"
FLXPOINT_BASE_URL = "https://api.flxpoint.com"

T = TypeVar("T")
ItemsArgument = Sequence[AccountingSyncItem] | Mapping[int, str | None] | UnsetType | None


class Client:
    """Client for the Flxpoint fulfillment-request accounting-sync API (or `frsync serve`).

    `base_url` defaults to $FRSYNC_BASE_URL, else `http://127.0.0.1:8000` (a local
    `frsync serve`); pass `FLXPOINT_BASE_URL` (or set the variable) for the real API.

    Requests are paced by a client-side copy of the token's rate-limit bucket and retried on
    429, 5xx and connection errors (see `RetryPolicy`). Use it as a context manager, or call
    `close()`.
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
        sleep: Sleep = time.sleep,
        jitter: random.Random | None = None,
        on_retry: RetryHook | None = None,
    ) -> None:
        if not token:
            raise ValueError("a token is required")
        self._http = httpx.Client(
            base_url=base_url or base_url_from_env(),
            timeout=timeout,
            transport=transport,
            headers={
                "X-API-TOKEN": token,
                "Accept": "application/json",
                "User-Agent": f"frsync/{__version__}",
            },
        )
        self._sender = Sender(
            self._http,
            retry=retry or RetryPolicy(),
            bucket=ClientBucket(clock=clock, sleep=sleep) if pace else None,
            sleep=sleep,
            random=(jitter or random.Random()).random,
            on_retry=on_retry,
        )

    @property
    def bucket(self) -> ClientBucket | None:
        """The client-side copy of the token's rate-limit bucket (None with `pace=False`)."""
        return self._sender.bucket

    @property
    def stats(self) -> ClientStats:
        return self._sender.stats

    def __repr__(self) -> str:
        return f"<Client base_url={str(self._http.base_url)!r}>"

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

    # -- API actions -------------------------------------------------------------------------

    def sync_accounting(
        self,
        fulfillment_request_id: int,
        *,
        accounting_synced: bool | UnsetType | None = UNSET,
        external_accounting_id: str | UnsetType | None = UNSET,
        accounting_error: str | UnsetType | None = UNSET,
        items: ItemsArgument = UNSET,
    ) -> str | None:
        """Record the accounting-sync outcome; a field left out stays unchanged, None clears it.

        `items` is a list of `AccountingSyncItem`, or a mapping of item id to its external id.
        Returns the request id the change is recorded under in the history, when the API
        sends one (`X-Request-Id`).
        """
        request = AccountingSyncRequest(
            accounting_synced=accounting_synced,
            external_accounting_id=external_accounting_id,
            accounting_error=accounting_error,
            items=_sync_items(items),
        )
        return self.send_accounting_sync(fulfillment_request_id, request)

    def send_accounting_sync(
        self, fulfillment_request_id: int, request: AccountingSyncRequest
    ) -> str | None:
        """PATCH a prepared body as it is (what `frsync push` sends for each row)."""
        response = self._sender.request(
            "PATCH",
            f"/fulfillment-requests/{fulfillment_request_id}/accounting-sync",
            content=msgspec.json.encode(request),
        )
        request_id: str | None = response.headers.get("x-request-id")
        return request_id

    def get_fulfillment_request(self, fulfillment_request_id: int) -> FulfillmentRequest:
        response = self._sender.request("GET", f"/fulfillment-requests/{fulfillment_request_id}")
        return _decode(response, FulfillmentRequest)

    def list_fulfillment_requests(
        self,
        *,
        page_number: int | None = None,
        page_size: int | None = None,
        since_id: int | None = None,
        **filters: Unpack[FulfillmentRequestFilters],
    ) -> list[FulfillmentRequest]:
        """One page of fulfillment requests, ordered by id."""
        params = query_params(filters)
        for name, value in (
            ("filterPageNumber", page_number),
            ("filterPageSize", page_size),
            ("sinceId", since_id),
        ):
            if value is not None:
                params[name] = str(value)
        response = self._sender.request("GET", "/fulfillment-requests", params=params)
        return _decode(response, list[FulfillmentRequest])

    def iter_pages(
        self,
        *,
        page_size: int = MAX_PAGE_SIZE,
        since_id: int = 0,
        **filters: Unpack[FulfillmentRequestFilters],
    ) -> Iterator[list[FulfillmentRequest]]:
        """Every matching fulfillment request, a page at a time, fetched as you go.

        Pages by `sinceId`, not page number, so requests that stop matching while you work
        through them (because you synced them) do not make the next page skip any. Stops at
        an empty page, not a short one: a server may cap the page size below what was asked.
        """
        while page := self.list_fulfillment_requests(
            page_size=page_size, since_id=since_id, **filters
        ):
            yield page
            since_id = page[-1].id

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
        response = self._sender.request(
            "GET", "/fulfillment-requests/count", params=query_params(filters)
        )
        return _decode(response, Count).count

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
        params: dict[str, str] = {}
        if limit is not None:
            params["limit"] = str(limit)
        if before_id is not None:
            params["beforeId"] = str(before_id)
        path = f"/fulfillment-requests/{fulfillment_request_id}/accounting-sync/history"
        return _decode(self._sender.request("GET", path, params=params), list[HistoryEntry])

    def iter_accounting_history(
        self, fulfillment_request_id: int, *, page_size: int = MAX_HISTORY_LIMIT
    ) -> Iterator[HistoryEntry]:
        """Every history entry of a fulfillment request, newest first, a page at a time.

        Pages by `beforeId`, so entries added while you read do not shift the pages. Stops
        at an empty page, not a short one: a server may cap the page size below the ask.
        """
        before_id: int | None = None
        while page := self.accounting_history(
            fulfillment_request_id, limit=page_size, before_id=before_id
        ):
            yield from page
            last = page[-1].id
            if last is None:  # a server without entry ids cannot page: it sent everything
                return
            before_id = last


def base_url_from_env() -> str:
    """$FRSYNC_BASE_URL, else `DEFAULT_BASE_URL` (a local `frsync serve`)."""
    return os.environ.get(BASE_URL_VARIABLE) or DEFAULT_BASE_URL


def _sync_items(items: ItemsArgument) -> tuple[AccountingSyncItem, ...] | UnsetType | None:
    if items is None or isinstance(items, UnsetType):
        return items
    if isinstance(items, Mapping):
        return tuple(
            AccountingSyncItem(id=item_id, external_accounting_item_id=external_id)
            for item_id, external_id in items.items()
        )
    return tuple(items)


def _decode(response: httpx.Response, type_: type[T]) -> T:
    try:
        return msgspec.json.decode(response.content, type=type_)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise UnexpectedResponseError(
            f"unexpected answer to {response.request.method} {response.request.url.path}: {exc}",
            status=response.status_code,
            request_id=response.headers.get("x-request-id"),
            body=response.text[:1000],
        ) from exc
