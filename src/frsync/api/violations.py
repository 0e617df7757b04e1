"""The server's side of the body walk in `frsync.contract`: its violations as `FieldError`s
for the 400 that lists them all (SPEC §5). `frsync push --dry-run` walks files with the same
rules (push/validate.py), so the two never disagree.
"""

from __future__ import annotations

from frsync import contract
from frsync.contract import unknown_field
from frsync.errors import FieldError

__all__ = ["body_violations", "more_violations", "unknown_field"]


def more_violations(count: int) -> FieldError:
    """The last entry of a 400's `errors` when more violations than are listed were found."""
    return FieldError(*contract.more_violations(count))


def body_violations(body: bytes) -> tuple[list[FieldError], int] | None:
    """Every violation in `body` (the first ones listed, then "… and N more") and how many
    there are; None when it cannot be parsed generically (the decoder's error stands)."""
    found = contract.body_violations(body)
    if found is None:
        return None
    return [FieldError(field, message) for field, message in found.errors()], found.total
