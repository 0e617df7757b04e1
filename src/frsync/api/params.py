"""Path ids and query parameters, parsed strictly: one rule for every integer, every
violation of a query listed at once.

An integer in a path or a query is written in canonical decimal form: digits only, no sign,
no leading zero, no space, no fraction or exponent (`221`, never `0221`, `+221`, `221.0` or
`2.21e2`). An empty query value means "no filter"; an unknown or repeated parameter is
refused, not ignored, so a typo never widens a query silently.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any, Protocol

from frsync.contract import (
    DEFAULT_HISTORY_LIMIT,
    FR_QUERY_PARAMETERS,
    HISTORY_QUERY_PARAMETERS,
    INT64_MAX,
    MAX_FR_NUMBERS,
    MAX_HISTORY_LIMIT,
    MAX_LISTED_ERRORS,
    MAX_PAGE_NUMBER,
    MAX_PAGE_SIZE,
    canonical_int,
    shown,
    unknown_name_message,
)
from frsync.errors import FieldError, InvalidRequest
from frsync.models import STATUS_NAMES
from frsync.store.base import FrQuery

__all__ = [
    "BadValue",
    "Parsers",
    "int_between",
    "parse_fr_query",
    "parse_history_query",
    "parse_int",
    "parse_query",
]


class QueryParams(Protocol):
    """What the parsers need of Starlette's QueryParams: every (name, value), repeats kept."""

    def multi_items(self) -> list[tuple[str, str]]: ...


class BadValue(ValueError):
    """One parameter's violation; `parse_query` collects them into one InvalidRequest."""


_Bad = BadValue


def parse_int(raw: str, name: str, low: int = 1, high: int = INT64_MAX) -> int:
    """`raw` as an integer from `low` to `high` in canonical decimal form (the one rule for
    path ids and query values), or InvalidRequest naming `name`."""
    try:
        return _int(raw, low, high)
    except _Bad as error:
        raise InvalidRequest(f"{name}: {error}", [FieldError(name, str(error))]) from None


def _int(raw: str, low: int = 1, high: int = INT64_MAX) -> int:
    value = canonical_int(raw)
    if value is not None and low <= value <= high:
        return value
    raise _Bad(f"Must be an integer from {low} to {high}, written in plain digits.")


def int_between(low: int, high: int = INT64_MAX) -> Callable[[str], int]:
    """A query value parser for integers from `low` to `high` (the one integer rule)."""
    return lambda raw: _int(raw, low, high)


def _bool(raw: str) -> bool:
    if raw not in ("true", "false"):
        raise _Bad("Must be true or false.")
    return raw == "true"


def _fr_numbers(raw: str) -> tuple[str, ...]:
    if "\x00" in raw:  # no store could hold it: refused alike on every backend
        raise _Bad("Must not contain U+0000.")
    values = raw.split(",")
    if len(values) > MAX_FR_NUMBERS:
        raise _Bad(f"At most {MAX_FR_NUMBERS} comma-separated values; this has {len(values)}.")
    return tuple(value for value in (v.strip() for v in values) if value)


def _statuses(raw: str) -> tuple[str, ...]:
    values = tuple(raw.split(","))
    unknown = [value for value in values if value not in STATUS_NAMES]
    if unknown:
        names = ", ".join(STATUS_NAMES)
        raise _Bad(f"Unknown status {shown(unknown[0])}; the statuses are {names}.")
    return values


Parsers = dict[str, tuple[str, Callable[[str], Any]]]  # wire name -> (field, parser)
_FR_PARAMS: Parsers = {
    "filterPageNumber": ("page_number", lambda raw: _int(raw, 1, MAX_PAGE_NUMBER)),
    "filterPageSize": ("page_size", lambda raw: _int(raw, 1, MAX_PAGE_SIZE)),
    "sinceId": ("since_id", lambda raw: _int(raw, 0)),
    "findOrderId": ("order_id", _int),
    "frNumbers": ("fr_numbers", _fr_numbers),
    "filterSourceId": ("source_id", _int),
    "filterStatus": ("statuses", _statuses),
    "filterAccountingSynced": ("accounting_synced", _bool),
    "filterHasAccountingError": ("has_accounting_error", _bool),
}
assert tuple(_FR_PARAMS) == FR_QUERY_PARAMETERS
_HISTORY_PARAMS: Parsers = {
    "limit": ("limit", lambda raw: _int(raw, 1, MAX_HISTORY_LIMIT)),
    "beforeId": ("before_id", _int),
}
assert tuple(_HISTORY_PARAMS) == HISTORY_QUERY_PARAMETERS


def parse_fr_query(params: QueryParams) -> FrQuery:
    """The filters of the list and count endpoints (SPEC §6)."""
    return FrQuery(**parse_query(params, _FR_PARAMS))


def parse_history_query(params: QueryParams) -> dict[str, int]:
    """The paging of the history endpoint (SPEC §6) as the store's keyword arguments:
    `limit` (always) and `before_id` (when given): newest first, older than `before_id`."""
    return {"limit": DEFAULT_HISTORY_LIMIT, **parse_query(params, _HISTORY_PARAMS)}


def parse_query(params: QueryParams, parsers: Parsers) -> dict[str, Any]:
    """Each known parameter parsed to its field; an empty value is no filter. Unknown or
    repeated names and bad values are collected into one InvalidRequest listing them all."""
    # multi_items(), not keys(): Starlette's keys() lists a repeated name once.
    items = params.multi_items()
    times = Counter(name for name, _ in items)
    values: dict[str, Any] = {}
    found: dict[str, FieldError] = {}  # one entry per parameter name, in query order
    for name, raw in items:
        if name in found:
            continue
        try:
            if name not in parsers and len(found) >= MAX_LISTED_ERRORS:
                raise _Bad("Unknown query parameter.")  # past what is listed: no fuzzy match
            if name not in parsers:
                raise _Bad(unknown_name_message("query parameter", name, parsers))
            if times[name] > 1:
                raise _Bad("Given more than once.")
            if raw:
                field, parse = parsers[name]
                values[field] = parse(raw)
        except _Bad as error:
            found[name] = FieldError(name, str(error))
    if found:
        errors = list(found.values())
        detail = "; ".join(f"{shown(e.field)}: {e.message}" for e in errors[:3])
        more = f"; and {len(errors) - 3:,} more" if len(errors) > 3 else ""
        raise InvalidRequest(f"Bad query: {detail}{more}", errors)
    return values
