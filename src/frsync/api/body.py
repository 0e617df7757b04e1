"""Turning an untrusted request into typed values: the path id, the JSON body, the patch.

Every failure here is a clean 4xx: a body that is not JSON, too large, too slow, malformed,
of the wrong shape or with a key twice never reaches the domain code.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import msgspec
from starlette.requests import ClientDisconnect, Request

from frsync.domain import INT64_MAX, AccountingPatch
from frsync.errors import (
    FieldError,
    InvalidRequest,
    PayloadTooLarge,
    RequestTimeout,
    UnsupportedMediaType,
)

_DIGITS = re.compile(r"[1-9][0-9]{0,18}")
_CHARSET = re.compile(r"charset\s*=\s*\"?([\w-]+)", re.IGNORECASE)
# Names from the sibling order endpoint that integrators send here by mistake.
_SIBLING_HINTS = {
    "accountingSyncError": "this endpoint calls it `accountingError`",
    "externalAccountingId": "an item's id in the books is `externalAccountingItemId`",
}
_patch_decoder = msgspec.json.Decoder(AccountingPatch)


def parse_id(raw: str, name: str) -> int:
    """A positive int64 in canonical decimal form (no sign, no leading zeros, no spaces)."""
    if _DIGITS.fullmatch(raw) and int(raw) <= INT64_MAX:
        return int(raw)
    message = f"{name} must be an integer from 1 to {INT64_MAX}."
    raise InvalidRequest(message, [FieldError(name, message)])


def check_json_content_type(request: Request) -> None:
    media_type, _, params = request.headers.get("content-type", "").partition(";")
    media_type = media_type.strip().lower()
    if media_type != "application/json" and not (
        media_type.startswith("application/") and media_type.endswith("+json")
    ):
        raise UnsupportedMediaType("Send the body as JSON with Content-Type: application/json.")
    charset = _CHARSET.search(params) if params else None
    if charset and charset.group(1).lower() not in ("utf-8", "utf8"):
        raise UnsupportedMediaType("JSON bodies must be UTF-8.")


async def read_body(request: Request, limit: int, read_timeout: float) -> bytes:
    """The whole body, refusing it as soon as it is known to be over `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"The body may be at most {limit} bytes.")
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(read_timeout):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLarge(f"The body may be at most {limit} bytes.")
                chunks.append(chunk)
    except TimeoutError:
        raise RequestTimeout(f"The body did not arrive within {read_timeout:g} s.") from None
    except ClientDisconnect:
        # Nobody is left to read the answer; what matters is that nothing is applied.
        raise InvalidRequest("The client closed the connection before the body ended.") from None
    return b"".join(chunks)


def decode_patch(body: bytes) -> AccountingPatch:
    try:
        patch = _patch_decoder.decode(body)
    except msgspec.ValidationError as error:
        raise _schema_error(str(error)) from None
    except (msgspec.DecodeError, ValueError, RecursionError):
        # ValueError covers invalid UTF-8 and integers too long to convert.
        raise InvalidRequest("The body is not valid JSON.") from None
    _reject_duplicate_keys(body)
    _reject_nul(patch)
    return patch


def _schema_error(message: str) -> InvalidRequest:
    # msgspec: "Object contains unknown field `x` - at `$.items[0]`", "Expected `int`, got …".
    text, _, at = message.partition(" - at `")
    path = at.rstrip("`").removeprefix("$").removeprefix(".")
    unknown = re.fullmatch(r"Object contains unknown field `(.*)`", text)
    if unknown:
        name = unknown.group(1)
        field = f"{path}.{name}" if path else name
        text = f"Unknown field `{name}`."
        hint = _SIBLING_HINTS.get(name)
        if hint and (name != "externalAccountingId" or path.startswith("items")):
            text = f"Unknown field `{name}`: {hint}."
        return InvalidRequest(text, [FieldError(field, text)])
    detail = f"{text} at `{path}`." if path else f"{text}."
    return InvalidRequest(detail, [FieldError(path, f"{text}.")])


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        twice = next(key for key in keys if keys.count(key) > 1)
        raise InvalidRequest(
            f"The key `{twice}` appears twice in one object.",
            [FieldError(twice, "Duplicate key.")],
        )
    return dict(pairs)


def _reject_duplicate_keys(body: bytes) -> None:
    # msgspec keeps the last of two equal keys; the contract says such a body is ambiguous.
    # The body has already passed the schema, so this second parse is small and safe.
    json.loads(body, object_pairs_hook=_no_duplicates)


def _reject_nul(patch: AccountingPatch) -> None:
    fields = [
        ("externalAccountingId", patch.external_accounting_id),
        ("accountingError", patch.accounting_error),
    ]
    for index, item in enumerate(patch.items or ()):
        fields.append(
            (f"items[{index}].externalAccountingItemId", item.external_accounting_item_id)
        )
    for name, value in fields:
        if isinstance(value, str) and "\x00" in value:
            raise InvalidRequest(
                f"`{name}` may not contain U+0000.", [FieldError(name, "Contains U+0000.")]
            )
