"""The store interface: everything the API and the CLI ask of a database, and nothing more.

Each backend (SQLite, PostgreSQL) implements it in its own module; the domain code sees only
this. A method either completes whole or changes nothing; a store that is locked or
unreachable raises `StoreBusy`, never a driver error.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from frsync.contract import DEFAULT_HISTORY_LIMIT, DEFAULT_PAGE_SIZE
from frsync.domain import AccountingPlan, Principal
from frsync.models import FulfillmentRequest, HistoryEntry, TokenType

# Every backend says this when a load names a parent row that is not there.
MISSING_PARENT = (
    "A row refers to an account, source or channel that does not exist; nothing was loaded."
)
REVOKED_COUNT_SQL = "SELECT COUNT(*) FROM api_tokens WHERE revoked_at IS NOT NULL"


@dataclass(frozen=True, slots=True)
class Audit:
    """Who made a change and when, for the history entry. Never the token itself."""

    token_id: int
    token_type: TokenType
    request_id: str
    at: int  # ms since the epoch


@dataclass(frozen=True, slots=True)
class FrQuery:
    """Filters of `GET /fulfillment-requests` (and `/count`); None means "no filter"."""

    page_number: int = 1
    page_size: int = DEFAULT_PAGE_SIZE
    since_id: int | None = None
    order_id: int | None = None
    fr_numbers: tuple[str, ...] | None = None
    source_id: int | None = None
    statuses: tuple[str, ...] | None = None
    accounting_synced: bool | None = None  # False matches false and null
    has_accounting_error: bool | None = None  # "" counts as no error


@dataclass(frozen=True, slots=True)
class TokenInfo:
    id: int
    token_type: TokenType
    scope_id: int
    label: str | None
    created_at: int
    revoked_at: int | None


@dataclass(slots=True)
class LoadData:
    """One batch of rows to upsert. Rows are tuples in the column order of `store.rows`."""

    accounts: list[tuple[Any, ...]] = field(default_factory=list)
    sources: list[tuple[Any, ...]] = field(default_factory=list)
    channels: list[tuple[Any, ...]] = field(default_factory=list)
    fulfillment_requests: list[tuple[Any, ...]] = field(default_factory=list)
    items: list[tuple[Any, ...]] = field(default_factory=list)
    tokens: list[tuple[Any, ...]] = field(default_factory=list)


class Store(Protocol):
    kind: ClassVar[str]  # "sqlite" or "postgresql": its SQL dialect

    async def find_token(self, token_hash: bytes) -> Principal | None:
        """The live (not revoked) token with this SHA-256 hash."""
        ...

    async def revoked_token_count(self) -> int:
        """How many tokens were ever revoked: when it changes, cached tokens are stale."""
        ...

    async def get_fulfillment_request(
        self, fr_id: int, principal: Principal
    ) -> FulfillmentRequest | None: ...

    async def sync_accounting(self, fr_id: int, plan: AccountingPlan, audit: Audit) -> None:
        """In one write transaction: lock the FR, read its state, apply `plan(state)`, record
        history. If `plan` raises, nothing is written and the error propagates."""
        ...

    async def accounting_history(
        self,
        fr_id: int,
        principal: Principal,
        *,
        limit: int = DEFAULT_HISTORY_LIMIT,
        before_id: int | None = None,
    ) -> list[HistoryEntry] | None:
        """At most `limit` entries older than `before_id` (all when None), newest first; None
        when the FR is missing or out of scope. One index range scan, whatever the length."""
        ...

    async def list_fulfillment_requests(
        self, principal: Principal, query: FrQuery
    ) -> list[FulfillmentRequest]: ...

    async def count_fulfillment_requests(self, principal: Principal, query: FrQuery) -> int: ...

    async def load(self, batches: Iterable[LoadData]) -> None:
        """Upsert every batch in one transaction: all of it lands, or none of it. The hooks
        given to the backend's `after_load` run last, in the same transaction."""
        ...

    async def create_token(
        self, token_hash: bytes, token_type: TokenType, scope_id: int, label: str | None
    ) -> int:
        """Store a new token's hash; raises NotFound when its account/source/channel does
        not exist. Returns the token id."""
        ...

    async def revoke_token(self, token_id: int) -> bool: ...

    async def list_tokens(self) -> list[TokenInfo]: ...

    async def ping(self) -> None:
        """Raise StoreBusy unless the store answers a trivial query."""
        ...

    async def close(self) -> None: ...
