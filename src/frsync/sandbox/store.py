"""What sandbox mode asks of a database, and the SQL both backends share.

Everything a sandbox holds — the baseline of the last load, tenants, fault rules and their
counters, the request journal — is in the database, so every worker process sees one copy.
Each backend (`store_sqlite`, `store_postgres`) runs the statements of `sql` through the
store's public `read()` / `transaction()` (SQLite) or `acquire()` / `transaction()`
(PostgreSQL); `frsync/backends.py` opens the one that fits the database URL.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, TypeGuard

from frsync.domain import Principal
from frsync.errors import FrsyncError
from frsync.models import TokenType

# Ids handed to tenants start far above any loaded or generated data (generated FRs start at
# 1,000,001) and come from one counter that only grows, so none is ever given twice.
TENANT_ID_BASE = 1_000_000_000_000


def is_tenant_id(account_id: int | None) -> TypeGuard[int]:
    """Whether `account_id` is a tenant's (made by `POST /__admin/tenants`, live or removed)."""
    return account_id is not None and account_id >= TENANT_ID_BASE


# The journal keeps, per account (and for requests no token authenticated), the newest
# entries: a tenant's 1,000, another account's 10,000; the whole is bounded in rows and bytes.
TENANT_JOURNAL_KEEP = 1_000
JOURNAL_KEEP = 10_000
JOURNAL_MAX_ROWS = 200_000
JOURNAL_MAX_BYTES = 256 * 1024 * 1024
MAX_TENANT_RULES = 1_000
MAX_RULES = 10_000
NEXT_ID = "next_tenant_id"
RULES_VERSION = "rules_version"


@dataclass(frozen=True, slots=True)
class TenantPlan:
    """A tenant to create: its size and the hashes of its three tokens."""

    fulfillment_requests: int
    items_per_request: int
    token_hashes: dict[TokenType, bytes]
    now: int  # ms since the epoch

    @property
    def id_count(self) -> int:
        return 3 + self.fulfillment_requests * (1 + self.items_per_request)


@dataclass(frozen=True, slots=True)
class TenantIds:
    account_id: int
    source_id: int
    channel_id: int
    fulfillment_request_ids: list[int]
    token_ids: dict[TokenType, int]


@dataclass(frozen=True, slots=True)
class StoredRule:
    id: int
    rule: str  # JSON as the admin API took it
    remaining: int | None
    account_id: int | None  # the tenant it was made through; None: global
    skip_left: int | None


@dataclass(frozen=True, slots=True)
class NewRule:
    rule: str
    remaining: int | None
    skip: int | None
    account_id: int | None
    now: int


class TooManyRules(FrsyncError):
    """The tenant or the sandbox holds as many rules as it may (the admin API's 409)."""


@dataclass(frozen=True, slots=True)
class RuleFilter:
    account_id: int | None = None  # a tenant's rules only; None: every rule
    after_id: int = 0
    limit: int = 1_000  # a page; at most MAX_RULES


@dataclass(frozen=True, slots=True)
class JournalEntry:
    at: int
    method: str
    path: str
    query: str
    status: int | None
    duration_ms: float
    request_id: str
    token_id: int | None
    token_type: str | None
    body: str | None
    body_truncated: bool
    account_id: int | None = None
    body_omitted: bool = False
    size: int = 0


@dataclass(frozen=True, slots=True)
class JournalFilter:
    method: str | None = None
    path: str | None = None  # exact, or a prefix ending in "*"
    status: int | None = None
    token_id: int | None = None
    account_id: int | None = None
    before_id: int | None = None
    limit: int = 100


class SandboxStore(Protocol):
    async def reset(self) -> None:
        """In one transaction, atomic against concurrent PATCHes: remove every tenant, put
        every FR changed since the baseline back, drop the history written since, clear fault
        rules and the journal."""
        ...

    async def create_tenant(self, plan: TenantPlan) -> TenantIds: ...

    async def delete_tenant(self, account_id: int) -> bool | None:
        """True: removed now; False: removed before; None: never a tenant."""
        ...

    async def is_tenant(self, account_id: int) -> bool:
        """A live tenant (made, not yet removed)."""
        ...

    async def purge_removed_tenants(self) -> int:
        """Delete the rows of up to sandbox_sql.PURGE_CHUNK removed tenants (in one short
        transaction); how many there were."""
        ...

    async def request_state(self, account_id: int | None) -> tuple[int, bool]:
        """In one read: the rules' version stamp, and whether `account_id` is a live tenant."""
        ...

    async def add_rule(self, rule: NewRule) -> int:
        """The new rule's id; TooManyRules past the tenant's or the sandbox's bound."""
        ...

    async def rules(self) -> list[StoredRule]:
        """Live rules (not used up), in creation order."""
        ...

    async def list_rules(self, where: RuleFilter) -> list[StoredRule]: ...

    async def skip(self, rule_id: int) -> bool:
        """Count one request a rule with `skip` lets through; False when none is left."""
        ...

    async def fire(self, rule_id: int) -> bool:
        """Count one firing of a rule with `times`; False when another request took the last."""
        ...

    async def delete_rule(self, rule_id: int, account_id: int | None) -> bool:
        """Delete a rule (only if it is that tenant's, when `account_id` is given)."""
        ...

    async def clear_rules(self, account_id: int | None) -> None:
        """Every rule, or one tenant's."""
        ...

    async def account_of(self, token_type: TokenType, scope_id: int) -> int | None: ...

    async def known_tokens(self, hashes: list[bytes]) -> set[bytes]:
        """Which of these SHA-256 hashes are tokens' (live or revoked)."""
        ...

    async def revoked_token(self, token_hash: bytes) -> Principal | None:
        """The principal a revoked token had, by its hash; None for any other hash."""
        ...

    async def record(self, entry: JournalEntry) -> None:
        """Append to the journal, keeping it within its bounds."""
        ...

    async def journal(self, where: JournalFilter) -> list[tuple[Any, ...]]:
        """Rows of (id, *sandbox_sql.JOURNAL_COLUMNS), newest first."""
        ...

    async def clear_journal(self, account_id: int | None) -> None:
        """The whole journal, or one account's entries."""
        ...
