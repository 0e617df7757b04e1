"""The API's limits and names (SPEC §2, §6), in one place for the server and the client.

No dependencies beyond the standard library and msgspec (a base dependency): the client-only
install imports it too. The PATCH body is defined here once (`AccountingSyncRequest`: the
server decodes it, the client encodes it), with the one walk that lists every way a body
breaks the contract (`body_violations`, `value_violations`): the server's 400 and
`frsync push --dry-run` both use it, so a file that passes the dry run is refused by the
server only for what the server alone knows (ids that do not exist or are out of scope).
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from functools import partial
from typing import Annotated, Any

import msgspec
from msgspec import UNSET, UnsetType

INT64_MAX = 2**63 - 1  # ids: 1 … INT64_MAX
MAX_EXTERNAL_ID = 255  # externalAccountingId, externalAccountingItemId (characters)
MAX_ACCOUNTING_ERROR = 4000  # accountingError (characters)
MAX_ITEMS = 1000  # entries of items[]
MAX_BODY_BYTES = 1024 * 1024  # the default; a setting may lower or raise it
MAX_HEAD_BYTES = 64 * 1024  # request line plus headers (431 above)
MAX_LISTED_ERRORS = 100  # entries of a 400's `errors`: a 1 MiB body of bad keys stays small

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 500  # filterPageSize
MAX_PAGE_NUMBER = 10_000_000  # filterPageNumber
MAX_FR_NUMBERS = 50  # values of frNumbers
DEFAULT_HISTORY_LIMIT = 20
MAX_HISTORY_LIMIT = 100  # limit of the history endpoint

# The PATCH body's fields, and an item's.
REQUEST_FIELDS = ("accountingSynced", "externalAccountingId", "accountingError", "items")
ITEM_FIELDS = ("id", "externalAccountingItemId")
# Names of the sibling order endpoint that integrators send here by mistake → this one's.
REQUEST_SIBLING_NAMES = {"accountingSyncError": "accountingError"}
ITEM_SIBLING_NAMES = {"externalAccountingId": "externalAccountingItemId"}

FR_QUERY_PARAMETERS = (
    "filterPageNumber",
    "filterPageSize",
    "sinceId",
    "findOrderId",
    "frNumbers",
    "filterSourceId",
    "filterStatus",
    "filterAccountingSynced",
    "filterHasAccountingError",
)
HISTORY_QUERY_PARAMETERS = ("limit", "beforeId")

# Names and numbers on the wire are ASCII, as the documents say (SPEC §5). Python's own
# `str.isdigit`, `str.isalpha`, `int()` and `str.upper()` take `٣`, `１２`, `í` and fold `ß` into
# `SS`: every parser of a path, query or body uses these two rules instead.
_CANONICAL_INT = re.compile(r"0|[1-9][0-9]{0,18}")  # [0-9] and [A-Za-z] are ASCII only
# Also a msgspec `pattern` (a fault rule's `match.method`): anchored, as msgspec searches.
METHOD_PATTERN = r"\A[A-Za-z]{1,16}\Z"
_METHOD_NAME = re.compile(METHOD_PATTERN)


def canonical_int(text: str) -> int | None:
    """`text` as an integer when it is written in canonical ASCII decimal (`221`; never
    `0221`, `+221`, `221.0`, ` 221`, `٢٢١` or `２２１`), else None. The caller bounds it."""
    return int(text) if _CANONICAL_INT.fullmatch(text) else None


def method_name(text: str) -> str | None:
    """`text` upper-cased when it is an HTTP method name (1–16 ASCII letters), else None:
    `ＰＡＴＣＨ` and `ß` are refused, never folded."""
    return text.upper() if _METHOD_NAME.match(text) else None


_SHOWN = 60  # characters of a caller's unknown name worth repeating back


def closest(name: str, allowed: Iterable[str]) -> str | None:
    """The allowed name `name` is most likely a typo of (`accountingEror` → `accountingError`,
    `pageSize` → `filterPageSize`), or None when none is close."""
    by_folded = {candidate.lower(): candidate for candidate in allowed}
    folded = name.lower()
    if folded in by_folded:  # only the case differs
        return by_folded[folded]
    # A suffix match catches a name without its prefix (`pageSize`, `Status`) that the
    # ratio would score too low against a long allowed name.
    ends = [c for f, c in by_folded.items() if len(folded) >= 4 and f.endswith(folded)]
    if len(ends) == 1:
        return ends[0]
    match = difflib.get_close_matches(folded, by_folded, n=1, cutoff=0.75)
    return by_folded[match[0]] if match else None


def unknown_name_advice(
    name: str, allowed: Iterable[str], sibling_names: Mapping[str, str] | None = None
) -> str:
    """What to send instead of the unknown `name`: the name this endpoint uses when the caller
    used the sibling order endpoint's, else the closest allowed name; then every allowed one.

    One wording for the server's 400s and for `frsync push --dry-run`, e.g.
    "did you mean 'accountingError'? Allowed: accountingSynced, …, items." """
    allowed = tuple(allowed)
    listed = f"Allowed: {', '.join(allowed)}."
    this_name = (sibling_names or {}).get(name)
    if this_name is not None:
        return f"this endpoint calls it {this_name!r}. {listed}"
    guess = closest(name, allowed)
    return f"did you mean {guess!r}? {listed}" if guess else listed


def unknown_name_message(
    kind: str, name: str, allowed: Iterable[str], sibling_names: Mapping[str, str] | None = None
) -> str:
    """The server's sentence for an unknown field or query parameter, e.g. "Unknown field
    'accountingEror'. Did you mean 'accountingError'? Allowed: …"."""
    advice = unknown_name_advice(name, allowed, sibling_names)
    return f"Unknown {kind} {shown(name)}. {advice[0].upper()}{advice[1:]}"


def shown(name: str) -> str:
    """A caller's name as an error message repeats it: quoted, and cut when very long."""
    return repr(name if len(name) <= _SHOWN else name[:_SHOWN] + "…")


# -- The PATCH body --------------------------------------------------------------------------

INT64_MIN = -(2**63)
ExternalId = Annotated[str, msgspec.Meta(max_length=MAX_EXTERNAL_ID)]
ErrorText = Annotated[str, msgspec.Meta(max_length=MAX_ACCOUNTING_ERROR)]
# Any int64 decodes; whether it is an item of the FR is the server's check #6 (SPEC §2).
ItemId = Annotated[int, msgspec.Meta(ge=INT64_MIN, le=INT64_MAX)]


class AccountingSyncItem(msgspec.Struct, frozen=True, rename="camel", forbid_unknown_fields=True):
    """`FulfillmentAccountingSyncItem`: an item id and its id in the accounting system."""

    id: ItemId
    external_accounting_item_id: ExternalId | UnsetType | None = UNSET


class AccountingSyncRequest(
    msgspec.Struct, frozen=True, rename="camel", forbid_unknown_fields=True
):
    """`FulfillmentAccountingSyncRequest`, the PATCH body: `UNSET` (omitted) leaves a field
    alone and is not sent; None (null) clears it (JSON merge-patch)."""

    accounting_synced: bool | UnsetType | None = UNSET
    external_accounting_id: ExternalId | UnsetType | None = UNSET
    accounting_error: ErrorText | UnsetType | None = UNSET
    items: (
        Annotated[tuple[AccountingSyncItem, ...], msgspec.Meta(max_length=MAX_ITEMS)]
        | UnsetType
        | None
    ) = UNSET


# -- Every violation of a body ---------------------------------------------------------------
# msgspec's typed decoder is the fast path and stops at the first error. A refused body is
# parsed again, generically, and walked against the same rules, so each violation is named
# with its field path: a string for `accountingSynced`, a number for `externalAccountingId`
# and an item without `id` are three entries, not one.

Violation = tuple[str, str]  # (field path, message)
# The sentence for an unknown name: (name, allowed names, sibling endpoint's names) -> message.
UnknownWording = Callable[[str, tuple[str, ...], Mapping[str, str]], str]
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


def more_violations(count: int) -> Violation:
    """The last entry of a 400's `errors` when more violations than are listed were found."""
    return ("", f"… and {count:,} more violations.")


class Violations:
    """The violations of one body: the first ones in full, the rest only counted, so a 1 MiB
    body of bad keys costs a parse and a count, not a message (and a fuzzy match) each."""

    def __init__(self, unknown: UnknownWording) -> None:
        self.listed: list[Violation] = []
        self.total = 0
        self.unknown = unknown

    @property
    def full(self) -> bool:
        return len(self.listed) >= MAX_LISTED_ERRORS - 1  # one entry left for "… and N more"

    def add(self, field: str, message: str | Callable[[], str]) -> None:
        self.total += 1
        if not self.full:
            self.listed.append((field, message if isinstance(message, str) else message()))

    def errors(self) -> list[Violation]:
        unlisted = self.total - len(self.listed)
        return self.listed + ([more_violations(unlisted)] if unlisted else [])


def _no_constants(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def body_violations(body: bytes) -> Violations | None:
    """Every violation in the JSON `body`; None when it cannot be parsed generically (nested
    too deep, a number too long): the caller then reports the decoder's first error alone."""
    try:
        value = json.loads(
            body.decode("utf-8"), object_pairs_hook=_object, parse_constant=_no_constants
        )
    except (ValueError, RecursionError):
        return None
    return value_violations(value)


def value_violations(value: object, *, unknown: UnknownWording | None = None) -> Violations:
    """Every violation in a body already parsed into JSON values (dicts, lists, …); an
    unknown field is worded by `unknown` (default: the server's `unknown_field`)."""
    found = Violations(unknown or unknown_field)
    if isinstance(value, dict):
        _check_object(value, "", REQUEST_FIELDS, REQUEST_SIBLING_NAMES, found)
        _check_fields(value, "", REQUEST_FIELDS, found)
        _check_items(value.get("items"), found)
    else:
        found.add("", f"The body must be a JSON object, not {json_kind(value)}.")
    return found


def unknown_field(name: str, allowed: tuple[str, ...], siblings: Mapping[str, str]) -> str:
    return unknown_name_message("field", name, allowed, siblings)


def _check_object(
    value: dict[str, Any],
    prefix: str,
    allowed: tuple[str, ...],
    siblings: Mapping[str, str],
    found: Violations,
) -> None:
    for key in getattr(value, "twice", ()):
        found.add(prefix + key, f"The key {shown(key)} appears twice in one object.")
    for key in value:
        if key not in allowed:
            found.add(prefix + key, partial(found.unknown, key, allowed, siblings))


def _check_fields(
    value: dict[str, Any], prefix: str, names: tuple[str, ...], found: Violations
) -> None:
    if "accountingSynced" in names and "accountingSynced" in value:
        synced = value["accountingSynced"]
        if synced is not None and not isinstance(synced, bool):
            message = f"Must be true, false or null, not {json_kind(synced)}."
            found.add(prefix + "accountingSynced", message)
    for name, most in _STRING_LIMITS.items():
        if name in names and value.get(name) is not None:
            problem = _string_problem(value[name], most)
            if problem:
                found.add(prefix + name, problem)


def _string_problem(value: object, most: int) -> str | None:
    if not isinstance(value, str):
        return f"Must be a string or null, not {json_kind(value)}."
    if len(value) > most:
        return f"Is {len(value):,} characters long; at most {most:,} are allowed."
    if "\x00" in value:
        return "Must not contain U+0000."
    if _SURROGATE.search(value):
        return "Must not contain a lone surrogate (invalid Unicode)."
    return None


def _check_items(items: object, found: Violations) -> None:
    if items is None:
        return
    if not isinstance(items, list):
        found.add("items", f"Must be an array or null, not {json_kind(items)}.")
        return
    if len(items) > MAX_ITEMS:
        message = f"Has {len(items):,} entries; at most {MAX_ITEMS:,} are allowed."
        found.add("items", message)
    # Entries past the limit are already a violation, counted once above.
    for index, item in enumerate(items[:MAX_ITEMS]):
        where = f"items[{index}]"
        if not isinstance(item, dict):
            found.add(where, f"Must be an object, not {json_kind(item)}.")
            continue
        _check_object(item, where + ".", ITEM_FIELDS, ITEM_SIBLING_NAMES, found)
        _check_item_id(item, where + ".id", found)
        _check_fields(item, where + ".", ITEM_FIELDS, found)


def _check_item_id(item: dict[str, Any], where: str, found: Violations) -> None:
    if "id" not in item:
        found.add(where, "Is required.")
        return
    value = item["id"]
    if isinstance(value, float) and value.is_integer():
        message = f"Must be an integer written without a fraction or exponent, not {value!r}."
        found.add(where, message)
    elif not isinstance(value, int) or isinstance(value, bool):
        found.add(where, f"Must be an integer, not {json_kind(value)}.")
    elif not INT64_MIN <= value <= INT64_MAX:
        found.add(where, f"Must be an integer from {INT64_MIN} to {INT64_MAX}.")


def json_kind(value: object) -> str:
    """A JSON value as a message names it: `a string`, `a number`, `true`, `null`…"""
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, str):
        return "a string"
    if isinstance(value, int | float):
        return "a number"
    return "an array" if isinstance(value, list) else "an object"
