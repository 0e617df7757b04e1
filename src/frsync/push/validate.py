"""The PATCH body rules (SPEC §2), checked on the integrator's side before anything is sent.

`request_from_fields` takes the decoded fields of one row, whether they came from a JSON line
or from CSV cells, and either builds the exact `AccountingSyncRequest` to send or lists every
problem with the field it is about. The body rules are the server's own walk
(`frsync.contract.value_violations`, the one behind its 400), so a file that passes here is
refused by the server only for what it alone knows: ids that do not exist or are out of scope.
Two checks are added that the server makes against the FR (SPEC §2, check 6) and a file can
fail on its own: an item id below 1, and an item listed twice.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import msgspec

from frsync.client import AccountingSyncRequest
from frsync.contract import INT64_MAX as MAX_ID
from frsync.contract import unknown_name_advice, value_violations

__all__ = ["MAX_ID", "Problems", "positive_id_problem", "request_from_fields"]

Problems = list[tuple[str, str]]  # (field, message)


def request_from_fields(
    fields: Mapping[str, Any], problems: Problems
) -> AccountingSyncRequest | None:
    """The request body for `fields`, or None after appending what is wrong to `problems`."""
    before = len(problems)
    for field, message in value_violations(dict(fields), unknown=_unknown).errors():
        problems.append((field, message[:1].lower() + message[1:]))
    if len(problems) == before:
        _check_item_ids(fields.get("items") or [], problems)
    if len(problems) > before:
        return None
    try:
        return msgspec.convert(fields, AccountingSyncRequest)
    except msgspec.ValidationError as error:  # the walk missed it: say what msgspec says
        problems.append(("", str(error)))
        return None


def positive_id_problem(value: object) -> str | None:
    """Why `value` cannot be an id (an integer in 1 … 2^63−1), or None when it can."""
    if type(value) is not int:
        return f"must be an integer, not {_show(value)}"
    if not 1 <= value <= MAX_ID:
        return f"must be between 1 and {MAX_ID}, not {value}"
    return None


def _check_item_ids(items: list[dict[str, Any]], problems: Problems) -> None:
    first_index: dict[int, int] = {}
    for index, item in enumerate(items):
        item_id = item["id"]
        if (problem := positive_id_problem(item_id)) is not None:
            problems.append((f"items[{index}].id", problem))
        elif item_id in first_index:
            problems.append(
                (f"items[{index}].id", f"repeats item {item_id} (items[{first_index[item_id]}])")
            )
        first_index.setdefault(item_id, index)


def _unknown(name: str, allowed: tuple[str, ...], siblings: Mapping[str, str]) -> str:
    """An unknown field as a push problem line ends: the server's advice, in its words."""
    return f"is not a field of this request; {unknown_name_advice(name, allowed, siblings)}"


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
