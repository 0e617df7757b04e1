"""The API's limits and names (SPEC §2, §6), in one place for the server and the client.

No dependencies beyond the standard library: the client-only install imports it too, so a
file that `frsync push --dry-run` passes is refused by the server only for what the server
alone knows (ids that do not exist or are out of scope).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping

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
_METHOD_NAME = re.compile(r"[A-Za-z]{1,16}")


def canonical_int(text: str) -> int | None:
    """`text` as an integer when it is written in canonical ASCII decimal (`221`; never
    `0221`, `+221`, `221.0`, ` 221`, `٢٢١` or `２２１`), else None. The caller bounds it."""
    return int(text) if _CANONICAL_INT.fullmatch(text) else None


def method_name(text: str) -> str | None:
    """`text` upper-cased when it is an HTTP method name (1–16 ASCII letters), else None:
    `ＰＡＴＣＨ` and `ß` are refused, never folded."""
    return text.upper() if _METHOD_NAME.fullmatch(text) else None


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
