"""The PATCH body rules (SPEC §2), checked on the integrator's side before anything is sent.

`request_from_fields` takes the decoded fields of one row, whether they came from a JSON line
or from CSV cells, and either builds the exact `AccountingSyncRequest` to send or lists every
problem with the field it is about. The checks are the server's, so a file that passes here is
refused by the server only for what it alone knows: ids that do not exist or are out of scope.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from frsync.client import UNSET, AccountingSyncItem, AccountingSyncRequest, UnsetType
from frsync.contract import INT64_MAX as MAX_ID
from frsync.contract import (
    ITEM_FIELDS,
    ITEM_SIBLING_NAMES,
    MAX_ACCOUNTING_ERROR,
    MAX_EXTERNAL_ID,
    MAX_ITEMS,
    REQUEST_FIELDS,
    REQUEST_SIBLING_NAMES,
    unknown_name_advice,
)

__all__ = ["MAX_ID", "Problems", "positive_id_problem", "request_from_fields"]

Problems = list[tuple[str, str]]  # (field, message)


def request_from_fields(
    fields: Mapping[str, Any], problems: Problems
) -> AccountingSyncRequest | None:
    """The request body for `fields`, or None after appending what is wrong to `problems`."""
    before = len(problems)
    _check_names(fields, "", REQUEST_FIELDS, REQUEST_SIBLING_NAMES, problems)
    synced = fields.get("accountingSynced", UNSET)
    if not isinstance(synced, bool | UnsetType) and synced is not None:
        problems.append(("accountingSynced", f"must be true, false or null, not {_show(synced)}"))
    external_id = _string(fields, "externalAccountingId", "", MAX_EXTERNAL_ID, problems)
    error = _string(fields, "accountingError", "", MAX_ACCOUNTING_ERROR, problems)
    items = _items(fields.get("items", UNSET), problems)
    if len(problems) > before:
        return None
    return AccountingSyncRequest(
        accounting_synced=synced,
        external_accounting_id=external_id,
        accounting_error=error,
        items=items,
    )


def positive_id_problem(value: object) -> str | None:
    """Why `value` cannot be an id (an integer in 1 … 2^63−1), or None when it can."""
    if type(value) is not int:
        return f"must be an integer, not {_show(value)}"
    if not 1 <= value <= MAX_ID:
        return f"must be between 1 and {MAX_ID}, not {value}"
    return None


def _items(value: object, problems: Problems) -> tuple[AccountingSyncItem, ...] | UnsetType | None:
    if value is None or isinstance(value, UnsetType):
        return value
    if not isinstance(value, list):
        problems.append(("items", f"must be an array or null, not {_show(value)}"))
        return None
    if len(value) > MAX_ITEMS:
        problems.append(("items", f"has {len(value)} entries; at most {MAX_ITEMS} are allowed"))
        return None
    items = [_item(entry, f"items[{index}]", problems) for index, entry in enumerate(value)]
    _check_duplicate_ids(items, problems)
    return tuple(item for item in items if item is not None)


def _item(entry: object, path: str, problems: Problems) -> AccountingSyncItem | None:
    if not isinstance(entry, dict):
        problems.append((path, f"must be an object, not {_show(entry)}"))
        return None
    _check_names(entry, f"{path}.", ITEM_FIELDS, ITEM_SIBLING_NAMES, problems)
    if "id" not in entry:
        problems.append((f"{path}.id", "is required"))
        return None
    if (problem := positive_id_problem(entry["id"])) is not None:
        problems.append((f"{path}.id", problem))
        return None
    external_id = _string(entry, "externalAccountingItemId", f"{path}.", MAX_EXTERNAL_ID, problems)
    return AccountingSyncItem(id=entry["id"], external_accounting_item_id=external_id)


def _check_duplicate_ids(items: list[AccountingSyncItem | None], problems: Problems) -> None:
    first_index: dict[int, int] = {}
    for index, item in enumerate(items):
        if item is None:
            continue
        if item.id in first_index:
            problems.append(
                (f"items[{index}].id", f"repeats item {item.id} (items[{first_index[item.id]}])")
            )
        first_index.setdefault(item.id, index)


def _string(
    fields: Mapping[str, Any], name: str, prefix: str, max_length: int, problems: Problems
) -> str | UnsetType | None:
    value = fields.get(name, UNSET)
    if value is None or isinstance(value, UnsetType):
        return value
    field = prefix + name
    if not isinstance(value, str):
        problems.append((field, f"must be a string or null, not {_show(value)}"))
    elif len(value) > max_length:
        problems.append((field, f"is {len(value)} characters long; at most {max_length}"))
    elif "\x00" in value:
        problems.append((field, "must not contain the character U+0000"))
    elif any("\ud800" <= char <= "\udfff" for char in value):
        problems.append((field, "must not contain a lone surrogate (invalid Unicode)"))
    else:
        return value
    return None


def _check_names(
    fields: Mapping[str, Any],
    prefix: str,
    allowed: tuple[str, ...],
    hints: Mapping[str, str],
    problems: Problems,
) -> None:
    for name in fields:
        if name in allowed:
            continue
        advice = unknown_name_advice(name, allowed, hints)
        problems.append((prefix + name, f"is not a field of this request; {advice}"))


def _show(value: object) -> str:
    """A value as its JSON type name, e.g. `string "true"`, for error messages."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"string {json.dumps(value[:40])}"
    if isinstance(value, int | float):
        return f"number {value!r}"
    if isinstance(value, list):
        return "an array"
    return "an object" if isinstance(value, dict) else type(value).__name__
