"""The server side's errors, under one base. They know nothing about HTTP:
`frsync.api.problems` holds the one table that maps each to an answer.

```
FrsyncError                  base of every error the server side raises on purpose
 ├── Unauthenticated          no token, or not a known, live token
 ├── RateLimited              the bucket is empty (carries the decision)
 ├── InvalidRequest           the request breaks the contract (carries every field error)
 │    └── InvalidItems        items[] names ids that are not this FR's, or names one twice
 ├── UnsupportedMediaType     the body is not JSON
 ├── PayloadTooLarge          the body is over the limit
 ├── RequestTimeout           the client took too long to send its body
 ├── NotFound                 no such resource, or not in the token's scope (never told apart)
 ├── StoreBusy                the store is locked or unreachable for now; try again later
 └── FixtureError             a fixture file (`frsync load`) is malformed; nothing is loaded
```

The integrator side (the client, `frsync push`, `frsync pending`) has its own tree under
`frsync.client.FrsyncError`: it installs without the server, so it cannot share this base.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from frsync.ratelimit.base import Decision


@dataclass(frozen=True, slots=True)
class FieldError:
    field: str  # "items[2].id", "filterPageSize", "" for the whole body
    message: str


class FrsyncError(Exception):
    """Base of every error frsync raises on purpose."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class Unauthenticated(FrsyncError):
    pass


class RateLimited(FrsyncError):
    def __init__(self, detail: str, decision: Decision) -> None:
        super().__init__(detail)
        self.decision = decision


class InvalidRequest(FrsyncError):
    def __init__(self, detail: str, errors: list[FieldError] | None = None) -> None:
        super().__init__(detail)
        self.errors = errors or []


class InvalidItems(InvalidRequest):
    pass


class UnsupportedMediaType(FrsyncError):
    pass


class PayloadTooLarge(FrsyncError):
    pass


class RequestTimeout(FrsyncError):
    pass


class NotFound(FrsyncError):
    pass


class StoreBusy(FrsyncError):
    def __init__(self, detail: str = "The store is busy; try again shortly.", retry_after: int = 1):
        super().__init__(detail)
        self.retry_after = retry_after


class FixtureError(FrsyncError):
    """The fixture is malformed; the message names the bad entry."""
