"""The push JSON Lines file: one PATCH body per line plus its `fulfillmentRequestId`.

```
{"fulfillmentRequestId": 221, "accountingSynced": true, "externalAccountingId": "QB-221", "accountingError": null, "items": [{"id": 12312, "externalAccountingItemId": "QB-221-A"}]}
{"fulfillmentRequestId": 222, "accountingSynced": false, "accountingError": "Customer not found"}
```

A field left out is not sent (unchanged); `null` clears it. Blank lines are skipped. The body
rules are the endpoint's: strict types, no unknown fields, no key twice, no NaN.
"""  # noqa: E501

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, TextIO

import msgspec

from frsync.client import FulfillmentRequest
from frsync.push.rows import LineProblem, PushRow
from frsync.push.validate import positive_id_problem, request_from_fields

__all__ = ["parse", "write_rows"]


class _DuplicateKeyError(ValueError):
    pass


def parse(text: str) -> tuple[list[PushRow], list[LineProblem]]:
    """The rows of a push JSON Lines file, or the problems that keep it from being pushed."""
    rows: list[PushRow] = []
    problems: list[LineProblem] = []
    # Split on "\n" only: U+2028 and friends may sit unescaped inside JSON strings.
    for line, text_line in enumerate(text.split("\n"), start=1):
        if text_line.strip():
            _parse_line(line, text_line, rows, problems)
    return rows, problems


def _parse_line(line: int, text: str, rows: list[PushRow], out: list[LineProblem]) -> None:
    try:
        body = json.loads(text, object_pairs_hook=_object, parse_constant=_no_constant)
    except _DuplicateKeyError as exc:
        out.append((line, str(exc)))
        return
    except ValueError as exc:  # JSONDecodeError, and the NaN / Infinity refusal
        out.append((line, f"is not valid JSON: {exc}"))
        return
    if not isinstance(body, dict):
        out.append((line, "must be a JSON object"))
        return
    problems: list[tuple[str, str]] = []
    fr_id = body.pop("fulfillmentRequestId", None)
    id_problem = "is required" if fr_id is None else positive_id_problem(fr_id)
    if id_problem is not None:
        problems.append(("fulfillmentRequestId", id_problem))
    request = request_from_fields(body, problems)
    out.extend((line, f"{field}: {message}") for field, message in problems)
    if request is not None and not problems:
        rows.append(PushRow(line, fr_id, request))


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKeyError(f"the key {key!r} appears twice in one object")
        result[key] = value
    return result


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


# -- writing (`frsync pending --format jsonl`) -------------------------------------------------


def write_rows(out: TextIO, requests: Iterable[FulfillmentRequest]) -> None:
    """One line per request holding its current non-null values: pushed back, it changes nothing."""
    for fr in requests:
        line: dict[str, Any] = {"fulfillmentRequestId": fr.id}
        for name, value in (
            ("accountingSynced", fr.accounting_synced),
            ("externalAccountingId", fr.external_accounting_id),
            ("accountingError", fr.accounting_error),
        ):
            if value is not None:
                line[name] = value
        if fr.fulfillment_request_items:
            line["items"] = [
                _item(item.id, item.external_accounting_item_id)
                for item in fr.fulfillment_request_items
            ]
        out.write(msgspec.json.encode(line).decode() + "\n")


def _item(item_id: int, external_id: str | None) -> dict[str, Any]:
    return (
        {"id": item_id}
        if external_id is None
        else {"id": item_id, "externalAccountingItemId": external_id}
    )
