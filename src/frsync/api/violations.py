"""Every way a PATCH body breaks the contract (SPEC §2), for the 400 that lists them all.

msgspec's typed decoder is the fast path and stops at the first error; a valid body never
comes here. A refused one is parsed again, generically, and walked against the same rules,
so the answer names each violation with its field path: a string for `accountingSynced`, a
number for `externalAccountingId` and an item without `id` are three entries, not one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from functools import partial
from typing import Any

from frsync.contract import (
    INT64_MAX,
    ITEM_FIELDS,
    ITEM_SIBLING_NAMES,
    MAX_ACCOUNTING_ERROR,
    MAX_EXTERNAL_ID,
    MAX_ITEMS,
    MAX_LISTED_ERRORS,
    REQUEST_FIELDS,
    REQUEST_SIBLING_NAMES,
    shown,
    unknown_name_message,
)
from frsync.errors import FieldError

INT64_MIN = -(2**63)
_SURROGATE = re.compile("[\ud800-\udfff]")
_STRING_LIMITS = {
    "externalAccountingId": MAX_EXTERNAL_ID,
    "accountingError": MAX_ACCOUNTING_ERROR,
    "externalAccountingItemId": MAX_EXTERNAL_ID,
}


class _Object(dict[str, Any]):
    """A JSON object that remembers the keys it was given more than once."""

    twice: list[str]


def _object(pairs: list[tuple[str, Any]]) -> _Object:
    result = _Object(pairs)
    result.twice = []
    if len(result) < len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                result.twice.append(key)
            seen.add(key)
    return result


def more_violations(count: int) -> FieldError:
    """The last entry of a 400's `errors` when more violations than are listed were found."""
    return FieldError("", f"… and {count:,} more violations.")


class _Found:
    """The violations of one body: the first ones in full, the rest only counted, so a 1 MiB
    body of bad keys costs a parse and a count, not a message (and a fuzzy match) each."""

    def __init__(self) -> None:
        self.listed: list[FieldError] = []
        self.total = 0

    @property
    def full(self) -> bool:
        return len(self.listed) >= MAX_LISTED_ERRORS - 1  # one entry left for "… and N more"

    def add(self, field: str, message: str | Callable[[], str]) -> None:
        self.total += 1
        if not self.full:
            self.listed.append(
                FieldError(field, message if isinstance(message, str) else message())
            )

    def errors(self) -> list[FieldError]:
        unlisted = self.total - len(self.listed)
        return self.listed + ([more_violations(unlisted)] if unlisted else [])


def _no_constants(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def body_violations(body: bytes) -> tuple[list[FieldError], int] | None:
    """Every violation in `body` (the first ones listed, then "… and N more") and how many
    there are; None when it cannot be parsed generically (nested too deep, a number too
    long): the caller then reports the decoder's first error alone."""
    try:
        value = json.loads(
            body.decode("utf-8"), object_pairs_hook=_object, parse_constant=_no_constants
        )
    except (ValueError, RecursionError):
        return None
    found = _Found()
    if isinstance(value, dict):
        _check_object(value, "", REQUEST_FIELDS, REQUEST_SIBLING_NAMES, found)
        _check_fields(value, "", REQUEST_FIELDS, found)
        _check_items(value.get("items"), found)
    else:
        found.add("", f"The body must be a JSON object, not {_kind(value)}.")
    return found.errors(), found.total


def unknown_field(name: str, allowed: tuple[str, ...], siblings: dict[str, str]) -> str:
    return unknown_name_message("field", name, allowed, siblings)


def _check_object(
    value: dict[str, Any],
    prefix: str,
    allowed: tuple[str, ...],
    siblings: dict[str, str],
    found: _Found,
) -> None:
    for key in getattr(value, "twice", ()):
        found.add(prefix + key, f"The key {shown(key)} appears twice in one object.")
    for key in value:
        if key not in allowed:
            found.add(prefix + key, partial(unknown_field, key, allowed, siblings))


def _check_fields(
    value: dict[str, Any], prefix: str, names: tuple[str, ...], found: _Found
) -> None:
    if "accountingSynced" in names and "accountingSynced" in value:
        synced = value["accountingSynced"]
        if synced is not None and not isinstance(synced, bool):
            message = f"Must be true, false or null, not {_kind(synced)}."
            found.add(prefix + "accountingSynced", message)
    for name, most in _STRING_LIMITS.items():
        if name in names and value.get(name) is not None:
            problem = _string_problem(value[name], most)
            if problem:
                found.add(prefix + name, problem)


def _string_problem(value: object, most: int) -> str | None:
    if not isinstance(value, str):
        return f"Must be a string or null, not {_kind(value)}."
    if len(value) > most:
        return f"Is {len(value):,} characters long; at most {most:,} are allowed."
    if "\x00" in value:
        return "Must not contain U+0000."
    if _SURROGATE.search(value):
        return "Must not contain a lone surrogate (invalid Unicode)."
    return None


def _check_items(items: object, found: _Found) -> None:
    if items is None:
        return
    if not isinstance(items, list):
        found.add("items", f"Must be an array or null, not {_kind(items)}.")
        return
    if len(items) > MAX_ITEMS:
        message = f"Has {len(items):,} entries; at most {MAX_ITEMS:,} are allowed."
        found.add("items", message)
    # Entries past the limit are already a violation, counted once above.
    for index, item in enumerate(items[:MAX_ITEMS]):
        where = f"items[{index}]"
        if not isinstance(item, dict):
            found.add(where, f"Must be an object, not {_kind(item)}.")
            continue
        _check_object(item, where + ".", ITEM_FIELDS, ITEM_SIBLING_NAMES, found)
        _check_item_id(item, where + ".id", found)
        _check_fields(item, where + ".", ITEM_FIELDS, found)


def _check_item_id(item: dict[str, Any], where: str, found: _Found) -> None:
    if "id" not in item:
        found.add(where, "Is required.")
        return
    value = item["id"]
    if isinstance(value, float) and value.is_integer():
        message = f"Must be an integer written without a fraction or exponent, not {value!r}."
        found.add(where, message)
    elif not isinstance(value, int) or isinstance(value, bool):
        found.add(where, f"Must be an integer, not {_kind(value)}.")
    elif not INT64_MIN <= value <= INT64_MAX:
        found.add(where, f"Must be an integer from {INT64_MIN} to {INT64_MAX}.")


def _kind(value: object) -> str:
    """A JSON value as a message names it: `a string`, `a number`, `true`, `null`…"""
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, str):
        return "a string"
    if isinstance(value, int | float):
        return "a number"
    return "an array" if isinstance(value, list) else "an object"
