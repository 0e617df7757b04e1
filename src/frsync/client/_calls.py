"""The API's actions as data: what to send for each, and how to read its answer.

Both clients turn an `ApiCall` into a request and run it through the core, so the contract
(paths, parameter names, bodies, answer types, paging) is written here once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import httpx
import msgspec

from frsync.client._core import decode_as
from frsync.client._filters import FulfillmentRequestFilters, query_params
from frsync.client._models import (
    AccountingSyncItem,
    AccountingSyncRequest,
    Count,
    FulfillmentRequest,
    HistoryEntry,
    UnsetType,
)

__all__ = [
    "ApiCall",
    "ItemsArgument",
    "accounting_history",
    "count_fulfillment_requests",
    "get_fulfillment_request",
    "list_fulfillment_requests",
    "next_before_id",
    "next_since_id",
    "send_accounting_sync",
    "sync_request",
]

T = TypeVar("T")
ItemsArgument = Sequence[AccountingSyncItem] | Mapping[int, str | None] | UnsetType | None


@dataclass(frozen=True, slots=True)
class ApiCall(Generic[T]):
    """One API action: the request to send and the reader of its success answer."""

    method: str
    path: str
    decode: Callable[[httpx.Response], T]
    params: Mapping[str, str] | None = None
    content: bytes | None = None

    def build(self, http: httpx.Client | httpx.AsyncClient) -> httpx.Request:
        headers = None if self.content is None else {"Content-Type": "application/json"}
        return http.build_request(
            self.method, self.path, params=self.params, content=self.content, headers=headers
        )


def sync_request(
    *,
    accounting_synced: bool | UnsetType | None,
    external_accounting_id: str | UnsetType | None,
    accounting_error: str | UnsetType | None,
    items: ItemsArgument,
) -> AccountingSyncRequest:
    """The PATCH body for `sync_accounting`'s keyword arguments."""
    return AccountingSyncRequest(
        accounting_synced=accounting_synced,
        external_accounting_id=external_accounting_id,
        accounting_error=accounting_error,
        items=_sync_items(items),
    )


def send_accounting_sync(
    fulfillment_request_id: int, request: AccountingSyncRequest
) -> ApiCall[str | None]:
    return ApiCall(
        "PATCH",
        f"/fulfillment-requests/{fulfillment_request_id}/accounting-sync",
        _request_id,
        content=msgspec.json.encode(request),
    )


def get_fulfillment_request(fulfillment_request_id: int) -> ApiCall[FulfillmentRequest]:
    path = f"/fulfillment-requests/{fulfillment_request_id}"
    return ApiCall("GET", path, decode_as(FulfillmentRequest))


def list_fulfillment_requests(
    page_number: int | None,
    page_size: int | None,
    since_id: int | None,
    filters: FulfillmentRequestFilters,
) -> ApiCall[list[FulfillmentRequest]]:
    params = query_params(filters)
    for name, value in (
        ("filterPageNumber", page_number),
        ("filterPageSize", page_size),
        ("sinceId", since_id),
    ):
        if value is not None:
            params[name] = str(value)
    decode = decode_as(list[FulfillmentRequest])
    return ApiCall("GET", "/fulfillment-requests", decode, params=params)


def count_fulfillment_requests(filters: FulfillmentRequestFilters) -> ApiCall[int]:
    decode = decode_as(Count)
    params = query_params(filters)
    return ApiCall("GET", "/fulfillment-requests/count", lambda r: decode(r).count, params=params)


def accounting_history(
    fulfillment_request_id: int, limit: int | None, before_id: int | None
) -> ApiCall[list[HistoryEntry]]:
    params: dict[str, str] = {}
    if limit is not None:
        params["limit"] = str(limit)
    if before_id is not None:
        params["beforeId"] = str(before_id)
    path = f"/fulfillment-requests/{fulfillment_request_id}/accounting-sync/history"
    return ApiCall("GET", path, decode_as(list[HistoryEntry]), params=params)


def next_since_id(page: Sequence[FulfillmentRequest]) -> int | None:
    """The `sinceId` of the page after `page`; None at the end (an empty page).

    Paging by `sinceId`, not page number, keeps requests that stop matching while one works
    through them (because they were synced) from making the next page skip any. An empty
    page ends it, not a short one: a server may cap the page size below what was asked.
    """
    return page[-1].id if page else None


def next_before_id(page: Sequence[HistoryEntry]) -> int | None:
    """The `beforeId` of the history page after `page`; None at the end.

    A server without entry ids cannot page: it sent everything.
    """
    return page[-1].id if page else None


def _request_id(response: httpx.Response) -> str | None:
    request_id: str | None = response.headers.get("x-request-id")
    return request_id


def _sync_items(items: ItemsArgument) -> tuple[AccountingSyncItem, ...] | UnsetType | None:
    if items is None or isinstance(items, UnsetType):
        return items
    if isinstance(items, Mapping):
        return tuple(
            AccountingSyncItem(id=item_id, external_accounting_item_id=external_id)
            for item_id, external_id in items.items()
        )
    return tuple(items)
