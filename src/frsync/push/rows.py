"""The rows of a push file, how the journal knows them, and the error for a file that is wrong."""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass

import msgspec

from frsync.client import AccountingSyncRequest
from frsync.client._errors import InputError, LineProblem  # their home is the client's tree

__all__ = ["InputError", "LineProblem", "PushRow", "row_keys"]


@dataclass(frozen=True, slots=True)
class PushRow:
    """One row of a push file: the PATCH to send and where it came from."""

    line: int
    fulfillment_request_id: int
    request: AccountingSyncRequest
    # What the journal remembers the row by (see `row_keys`); set once the file is read.
    key: str = ""

    @property
    def body(self) -> bytes:
        return msgspec.json.encode(self.request)


def row_keys(rows: list[PushRow]) -> list[PushRow]:
    """The rows with their journal keys: what they send, and which repeat of it they are.

    The key is a digest of the fulfillment request id and the exact body, so moving a row, or
    adding rows around it, keeps it done; editing it makes it a new row. The repeat count keeps
    two identical rows apart (A, then B, then A again for one fulfillment request).
    """
    seen: Counter[str] = Counter()
    keyed = []
    for row in rows:
        digest = hashlib.sha256(b"%d\n%s" % (row.fulfillment_request_id, row.body)).hexdigest()
        seen[digest] += 1
        key = f"{digest[:32]}.{seen[digest]}"
        keyed.append(PushRow(row.line, row.fulfillment_request_id, row.request, key))
    return keyed
