"""What sandbox mode asks of a database, and the SQL both backends share.

Everything a sandbox holds — the baseline of the last load, tenants, fault rules and their
counters, the request journal — is in the database, so every worker process sees one copy.
Each backend (`sandbox_sqlite`, `sandbox_postgres`) runs these statements with its own
primitives; `open_sandbox_store` picks one by URL scheme, as `open_store` does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from frsync.models import TokenType

# Ids handed to tenants start far above any loaded or generated data (generated FRs start at
# 1,000,001) and come from one counter that only grows, so none is ever given twice.
TENANT_ID_BASE = 1_000_000_000_000
JOURNAL_KEEP = 10_000
BASELINE_MARK = "baseline_history_id"
NEXT_ID = "next_tenant_id"


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


@dataclass(frozen=True, slots=True)
class StoredRule:
    id: int
    rule: str  # JSON as the admin API took it
    remaining: int | None


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


@dataclass(frozen=True, slots=True)
class JournalFilter:
    method: str | None = None
    path: str | None = None  # exact, or a prefix ending in "*"
    status: int | None = None
    token_id: int | None = None
    limit: int = 100


class SandboxStore(Protocol):
    async def reset(self) -> None:
        """In one transaction: remove tenants, put every FR changed since the baseline back,
        drop the history written since, clear fault rules and the journal."""
        ...

    async def create_tenant(self, plan: TenantPlan) -> TenantIds: ...

    async def delete_tenant(self, account_id: int, now: int) -> bool | None:
        """True: removed now; False: removed before; None: not a tenant."""
        ...

    async def add_rule(self, rule: str, remaining: int | None, now: int) -> int: ...

    async def rules(self) -> list[StoredRule]:
        """Live rules (not used up), in creation order."""
        ...

    async def fire(self, rule_id: int) -> bool:
        """Count one firing of a rule with `times`; False when another request took the last."""
        ...

    async def delete_rule(self, rule_id: int) -> bool: ...

    async def clear_rules(self) -> None: ...

    async def account_of(self, token_type: TokenType, scope_id: int) -> int | None: ...

    async def record(self, entry: JournalEntry) -> None:
        """Append to the journal, keeping the newest JOURNAL_KEEP entries."""
        ...

    async def journal(self, where: JournalFilter) -> list[tuple[Any, ...]]:
        """Rows of (id, *sandbox_sql.JOURNAL_COLUMNS), newest first."""
        ...

    async def clear_journal(self) -> None: ...


def open_sandbox_store(url: str, store: Any) -> SandboxStore:
    """The sandbox store working through `store` (the API's store for `url`)."""
    from frsync.store import scheme_of

    opener: Callable[[Any], SandboxStore]
    if scheme_of(url) == "sqlite":
        from frsync.store.sandbox_sqlite import SqliteSandboxStore as opener
    else:
        from frsync.store.sandbox_postgres import PostgresSandboxStore as opener
    return opener(store)
