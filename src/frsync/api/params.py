"""Query parameters of the list and count endpoints, parsed strictly into an `FrQuery`."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from frsync.domain import INT64_MAX
from frsync.errors import FieldError, InvalidRequest
from frsync.models import STATUS_NAMES
from frsync.store.base import FrQuery

MAX_PAGE_SIZE = 500
MAX_FR_NUMBERS = 50
_INT = re.compile(r"[0-9]{1,19}")


def _bad(name: str, message: str) -> InvalidRequest:
    return InvalidRequest(f"{name}: {message}", [FieldError(name, message)])


def _int(name: str, raw: str, low: int = 1, high: int = INT64_MAX) -> int:
    if not _INT.fullmatch(raw) or not low <= int(raw) <= high:
        raise _bad(name, f"must be an integer from {low} to {high}.")
    return int(raw)


def _bool(name: str, raw: str) -> bool:
    if raw not in ("true", "false"):
        raise _bad(name, "must be `true` or `false`.")
    return raw == "true"


def _list(name: str, raw: str, most: int) -> tuple[str, ...]:
    values = tuple(v.strip() for v in raw.split(",") if v.strip())
    if len(values) > most:
        raise _bad(name, f"at most {most} values.")
    return values


def _statuses(name: str, raw: str) -> tuple[str, ...]:
    values = _list(name, raw, len(STATUS_NAMES))
    unknown = [v for v in values if v not in STATUS_NAMES]
    if unknown:
        raise _bad(name, f"unknown status {unknown[0]!r}; one of {', '.join(STATUS_NAMES)}.")
    return values


# wire name -> (FrQuery field, parser)
_PARAMS: dict[str, tuple[str, Callable[[str, str], Any]]] = {
    "filterPageNumber": ("page_number", lambda n, r: _int(n, r, 1, 10_000_000)),
    "filterPageSize": ("page_size", lambda n, r: _int(n, r, 1, MAX_PAGE_SIZE)),
    "sinceId": ("since_id", lambda n, r: _int(n, r, 0)),
    "findOrderId": ("order_id", _int),
    "frNumbers": ("fr_numbers", lambda n, r: _list(n, r, MAX_FR_NUMBERS)),
    "filterSourceId": ("source_id", _int),
    "filterStatus": ("statuses", _statuses),
    "filterAccountingSynced": ("accounting_synced", _bool),
    "filterHasAccountingError": ("has_accounting_error", _bool),
}


def parse_fr_query(params: Mapping[str, str], keys: list[str]) -> FrQuery:
    """Empty values mean no filter; unknown or repeated parameters are refused, not ignored,
    so a typo never widens a query silently."""
    # Starlette's QueryParams.keys() lists a repeated name once; its multi_items() do not.
    multi_items = getattr(params, "multi_items", None)
    if multi_items is not None:
        keys = [name for name, _ in multi_items()]
    values: dict[str, Any] = {}
    for name in keys:
        if name not in _PARAMS:
            raise _bad(name, "unknown query parameter.")
        if keys.count(name) > 1:
            raise _bad(name, "given more than once.")
        raw = params[name].strip()
        if raw:
            field, parse = _PARAMS[name]
            values[field] = parse(name, raw)
    return FrQuery(**values)


# The history endpoint's paging (SPEC §6): a page of `limit` entries older than `beforeId`.
HISTORY_DEFAULT_LIMIT = 20
HISTORY_MAX_LIMIT = 100
_HISTORY_PARAMS: dict[str, tuple[str, Callable[[str, str], int]]] = {
    "limit": ("limit", lambda n, r: _int(n, r, 1, HISTORY_MAX_LIMIT)),
    "beforeId": ("before_id", _int),
}


def parse_history_query(params: Mapping[str, str], keys: list[str]) -> dict[str, int]:
    """`limit` and `beforeId` as the store's keyword arguments; the same strictness as
    `parse_fr_query` (unknown or repeated names refused, empty means unset)."""
    multi_items = getattr(params, "multi_items", None)
    if multi_items is not None:
        keys = [name for name, _ in multi_items()]
    values = {"limit": HISTORY_DEFAULT_LIMIT}
    for name in keys:
        if name not in _HISTORY_PARAMS:
            allowed = ", ".join(f"`{known}`" for known in _HISTORY_PARAMS)
            raise _bad(name, f"unknown query parameter; allowed: {allowed}.")
        if keys.count(name) > 1:
            raise _bad(name, "given more than once.")
        raw = params[name].strip()
        if raw:
            field, parse = _HISTORY_PARAMS[name]
            values[field] = parse(name, raw)
    return values
