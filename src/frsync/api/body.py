"""Turning an untrusted request body into a typed patch: media type, size, time, schema.

Every failure here is a clean 4xx: a body that is not JSON, too large, too slow, malformed,
of the wrong shape or with a key twice never reaches the domain code.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import msgspec
from msgspec import UNSET
from starlette.requests import ClientDisconnect

from frsync.api.call import Incoming
from frsync.api.violations import body_violations, unknown_field
from frsync.contract import (
    ITEM_FIELDS,
    ITEM_SIBLING_NAMES,
    REQUEST_FIELDS,
    REQUEST_SIBLING_NAMES,
)
from frsync.domain import AccountingPatch
from frsync.errors import (
    FieldError,
    InvalidRequest,
    PayloadTooLarge,
    RequestTimeout,
    UnsupportedMediaType,
)

__all__ = ["check_json_content_type", "decode_json", "decode_patch", "read_body"]

_CHARSET = re.compile(r"charset\s*=\s*\"?([\w-]+)", re.IGNORECASE)
_patch_decoder = msgspec.json.Decoder(AccountingPatch)


def check_json_content_type(request: Incoming) -> None:
    media_type, _, params = request.headers.get("content-type", "").partition(";")
    media_type = media_type.strip().lower()
    if media_type != "application/json" and not (
        media_type.startswith("application/") and media_type.endswith("+json")
    ):
        raise UnsupportedMediaType("Send the body as JSON with Content-Type: application/json.")
    charset = _CHARSET.search(params) if params else None
    if charset and charset.group(1).lower() not in ("utf-8", "utf8"):
        raise UnsupportedMediaType("JSON bodies must be UTF-8.")


async def read_body(request: Incoming, limit: int, read_timeout: float) -> bytes:
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
    """The body as a patch, or InvalidRequest listing every violation (SPEC §5)."""
    try:
        patch = _patch_decoder.decode(body)
    except msgspec.ValidationError as error:
        raise _invalid(body, _decoder_error(str(error))) from None
    except (msgspec.DecodeError, ValueError, RecursionError):
        # ValueError covers invalid UTF-8 and integers too long to convert. A lone surrogate
        # escape (`"\\ud800"`) is JSON's grammar but no Unicode: the walk names its field.
        raise _invalid(body, FieldError("", "The body is not valid JSON.")) from None
    if (_may_repeat_a_key(body, patch) and _has_duplicate_keys(body)) or _has_nul(patch):
        raise _invalid(body, FieldError("", "The body breaks the contract."))
    return patch


def decode_json(body: bytes) -> Any:
    """Any other JSON body (the sandbox admin API's) under the PATCH's rules: not JSON,
    nested too deep or a key given twice is InvalidRequest, never a crash."""
    try:
        value = msgspec.json.decode(body)
        twice = _has_duplicate_keys(body)
    except (msgspec.DecodeError, ValueError, RecursionError):
        raise InvalidRequest(
            "The body is not valid JSON.", [FieldError("", "not JSON, or nested too deep")]
        ) from None
    if twice:
        raise InvalidRequest("The body gives a key twice.", [FieldError("", "a key twice")])
    return value


def _invalid(body: bytes, first: FieldError) -> InvalidRequest:
    """The 400 for a refused body: every violation the walk finds, else the decoder's first
    (when the walk cannot parse the body: nested too deep, say)."""
    found, total = body_violations(body) or ([], 0)
    if not found:
        found, total = [first], 1
    if total == 1:
        return InvalidRequest(_sentence(found[0]), found)
    listed = "; ".join(_sentence(error).rstrip(".") for error in found[:3])
    more = f"; and {total - 3:,} more" if total > 3 else ""
    return InvalidRequest(f"{total:,} problems: {listed}{more}.", found)


def _sentence(error: FieldError) -> str:
    return f"{error.field}: {error.message}" if error.field else error.message


def _decoder_error(message: str) -> FieldError:
    """msgspec's first error as a field error: "Object contains unknown field `x` - at
    `$.items[0]`", "Expected `int`, got `float` - at `$.items[0].id`"."""
    text, _, at = message.partition(" - at `")
    path = at.rstrip("`").removeprefix("$").removeprefix(".")
    unknown = re.fullmatch(r"Object contains unknown field `(.*)`", text)
    if unknown is None:
        return FieldError(path, f"{text}.")
    name = unknown.group(1)
    allowed, siblings = (
        (ITEM_FIELDS, ITEM_SIBLING_NAMES) if path else (REQUEST_FIELDS, REQUEST_SIBLING_NAMES)
    )
    field = f"{path}.{name}" if path else name
    return FieldError(field, unknown_field(name, allowed, siblings))


class _DuplicateKey(Exception):
    pass


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise _DuplicateKey
    return result


_TOP_KEYS = [f'"{name}"'.encode() for name in REQUEST_FIELDS]
_ID_KEY = b'"id"'
_ITEM_ID_KEY = b'"externalAccountingItemId"'


def _may_repeat_a_key(body: bytes, patch: AccountingPatch) -> bool:
    """False when no key can be there twice, told from the decoded patch and a count of each
    key's bytes, so that only a suspect body is parsed a second time.

    The schema refused every unknown key, so every key is one of the six names. Spelled
    without escapes, a key is its bytes between quotes, and a `"` inside a string value is
    escaped: with no backslash in the body, a name's count of `"name"` is exactly how often
    it is a key. A key is repeated iff a count exceeds what the patch holds: one of each
    top-level name, one `id` per item, one `externalAccountingItemId` per item that set it."""
    if b"\\" in body:
        return True  # an escape may spell a key (`\\u0069d` is `id`): the exact check decides
    if any(body.count(key) > 1 for key in _TOP_KEYS):
        return True
    items = patch.items or ()
    if body.count(_ID_KEY) != len(items):
        return True
    given = sum(item.external_accounting_item_id is not UNSET for item in items)
    return body.count(_ITEM_ID_KEY) != given


def _has_duplicate_keys(body: bytes) -> bool:
    # msgspec keeps the last of two equal keys; the contract says such a body is ambiguous.
    # The body has already passed the schema, so this second parse is small and safe.
    try:
        json.loads(body, object_pairs_hook=_refuse_duplicates)
    except _DuplicateKey:
        return True
    return False


def _has_nul(patch: AccountingPatch) -> bool:
    values = [patch.external_accounting_id, patch.accounting_error]
    values += [item.external_accounting_item_id for item in patch.items or ()]
    return any(isinstance(value, str) and "\x00" in value for value in values)
