"""What the console asks of a database beyond the API's store: sessions, per-token usage,
and the reads behind its views. One small interface; the console's own SQL (`sql.py`) runs
on each store's public interface (`store_sqlite.py`, `store_postgres.py`), opened with the
store by `frsync/backends.py`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from frsync.domain import Principal
from frsync.models import FulfillmentRequest, HistoryEntry, TokenType

if TYPE_CHECKING:
    from frsync.store.base import FrQuery


@dataclass(frozen=True, slots=True)
class SignedIn:
    principal: Principal
    scope_name: str | None  # the account's, source's or channel's name; None for an operator
    token_hash: bytes  # names the token's rate-limit bucket (api.auth.bucket_key)


@dataclass(frozen=True, slots=True)
class HourCount:
    hour: int  # hours since the epoch, UTC
    # History entries with a change (one per applied PATCH that changed something):
    synced: int  # those that did not set an accountingError
    failed: int  # those that set one


@dataclass(frozen=True, slots=True)
class ErrorCount:
    message: str
    count: int


@dataclass(frozen=True, slots=True)
class ErrorRow:
    id: int
    number: str
    account_id: int
    status: str
    updated_at: int  # ms since the epoch
    message: str


@dataclass(frozen=True, slots=True)
class FrDetail:
    fr: FulfillmentRequest
    history: list[HistoryEntry]  # newest first, one page


@dataclass(frozen=True, slots=True)
class TokenRow:
    id: int
    token_type: TokenType
    scope_id: int
    scope_name: str | None
    label: str | None
    created_at: int
    revoked_at: int | None
    last_used_at: int | None
    requests: int  # over the window asked for
    rate_limited: int


@dataclass(frozen=True, slots=True)
class UsageCount:
    token_id: int
    minute: int  # minutes since the epoch
    requests: int
    rate_limited: int


class ConsoleStore(Protocol):
    async def create_session(
        self, session_hash: bytes, token_id: int, now: int, expires_at: int, keep: int
    ) -> None:
        """Record a signed-in browser, and end the token's oldest sessions beyond its `keep`
        newest (this one always kept); sessions already expired are removed on the way."""
        ...

    async def session_principal(self, session_hash: bytes, now: int) -> SignedIn | None:
        """Who a live session belongs to, while its token is not revoked."""
        ...

    async def end_session(self, session_hash: bytes) -> None: ...

    async def count(self, principal: Principal, query: FrQuery) -> int:
        """The count endpoint's own query (`queries.count_sql`), on the console's connections."""
        ...

    async def syncs_per_hour(self, principal: Principal, since: int) -> list[HourCount]:
        """Applied syncs in scope from `since` (ms), per hour, oldest first."""
        ...

    async def top_errors(self, principal: Principal, limit: int) -> list[ErrorCount]: ...

    async def errors_page(
        self,
        principal: Principal,
        before: tuple[int, int] | None,
        limit: int,
        message: str | None = None,
    ) -> list[ErrorRow]:
        """FRs with an error (this one, when given), most recently updated first; `before`
        is the (updated_at, id) of the last row seen."""
        ...

    async def count_errors(self, principal: Principal, message: str) -> int: ...

    async def find(self, principal: Principal, text: str, limit: int) -> list[int]:
        """Ids of the FRs in scope whose id or number is `text`."""
        ...

    async def detail(
        self, principal: Principal, fr_id: int, before_id: int | None, limit: int
    ) -> FrDetail | None:
        """The FR with its items and one page of history; None when missing or out of scope."""
        ...

    async def tokens_page(self, after_id: int, limit: int, since_minute: int) -> list[TokenRow]: ...

    async def add_usage(
        self, counts: Sequence[UsageCount], last_used: dict[int, int], keep_from: int
    ) -> None:
        """Add per-minute counts and last-used times; drop minutes before `keep_from`."""
        ...

    async def close(self) -> None: ...
