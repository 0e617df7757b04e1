"""The `GET /fulfillment-requests` filters: Python keyword arguments to query parameters."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypedDict

__all__ = ["FulfillmentRequestFilters", "query_params"]


class FulfillmentRequestFilters(TypedDict, total=False):
    """Filters shared by the list, iterate and count calls (SPEC §6); all optional."""

    accounting_synced: bool  # False matches false and null: "not yet synced"
    has_accounting_error: bool
    source_id: int
    status: str | Sequence[str]  # "Processed" or ["Processed", "Acknowledged"]
    order_id: int | str
    fr_numbers: Sequence[str]  # at most 50


_WIRE_NAMES = {
    "accounting_synced": "filterAccountingSynced",
    "has_accounting_error": "filterHasAccountingError",
    "source_id": "filterSourceId",
    "status": "filterStatus",
    "order_id": "findOrderId",
    "fr_numbers": "frNumbers",
}


def query_params(filters: FulfillmentRequestFilters) -> dict[str, str]:
    """The query string for `filters`, with the API's names and value syntax."""
    params: dict[str, str] = {}
    for name, value in filters.items():
        wire_name = _WIRE_NAMES.get(name)
        if wire_name is None:
            raise TypeError(f"unknown fulfillment-request filter {name!r}")
        if value is not None:
            params[wire_name] = _render(value)
    return params


def _render(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int):
        return str(value)
    if isinstance(value, Sequence):
        return ",".join(str(part) for part in value)
    raise TypeError(f"cannot send {value!r} as a filter value")
