"""The rules: token scope, the merge-patch of the accounting fields, and history entries.

Pure functions over plain records; the store calls `plan_accounting_sync` inside its write
transaction, so what it decides is applied whole or not at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec
from msgspec import UNSET

from frsync.contract import AccountingSyncItem, AccountingSyncRequest
from frsync.contract import ErrorText as ErrorText  # re-exported: fixture.py checks its
from frsync.contract import ExternalId as ExternalId  # strings with the body's limits
from frsync.errors import FieldError, InvalidItems, NotFound
from frsync.models import OPERATOR, TokenType

# The PATCH body is defined once, in `frsync.contract` (the client sends the same type).
# `plan_accounting_sync` below has a twin: the PL/pgSQL function `frsync_sync_accounting` of
# migration 0005 (store/migrations/versions/0005_sync_accounting_function.py; redefined by
# 0007 and, on the accounting table, by 0008), which applies the PATCH inside PostgreSQL.
# tests/api/test_sync_accounting.py holds them equal: it runs on SQLite (this Python plan) and
# on PostgreSQL (the function), asserting the same state, history diffs and refusals.
AccountingPatch = AccountingSyncRequest
PatchItem = AccountingSyncItem


SCOPE_COLUMNS: dict[TokenType, str] = {
    "account": "account_id",
    "source": "source_id",
    "channel": "channel_id",
}


class Principal(msgspec.Struct, frozen=True, gc=False):
    """Who is calling: a live token, its type and the id of what it is scoped to.

    Untracked by the garbage collector (`gc=False`: it holds no containers): the token
    cache keeps one per token for a minute, long enough to reach the collector's oldest
    generation, where each new one brought the next full collection (5–30 ms with the
    event loop stopped) nearer."""

    token_id: int
    token_type: TokenType
    scope_id: int

    @property
    def is_operator(self) -> bool:
        """The platform team's token: every account in the console, never the FR endpoints."""
        return self.token_type == OPERATOR

    @property
    def scope_column(self) -> str:
        return SCOPE_COLUMNS[self.token_type]

    def covers(self, account_id: int, source_id: int, channel_id: int | None) -> bool:
        if self.is_operator:
            return True
        owner = {"account": account_id, "source": source_id, "channel": channel_id}
        return owner[self.token_type] == self.scope_id


@dataclass(slots=True)
class AccountingState:
    """An FR's accounting fields and its items' external ids, read under the write lock."""

    account_id: int
    source_id: int
    channel_id: int | None
    accounting_synced: bool | None
    external_accounting_id: str | None
    accounting_error: str | None
    accounting_synced_at: int | None
    item_external_ids: dict[int, str | None]


@dataclass(slots=True)
class AccountingChange:
    """What to write: FR columns, item external ids, and the history entry's field diff."""

    fr_columns: dict[str, Any] = field(default_factory=dict)
    item_external_ids: dict[int, str | None] = field(default_factory=dict)
    diff: dict[str, Any] = field(default_factory=dict)


# Body field -> column, for the three top-level accounting fields.
_FIELDS = (
    ("accountingSynced", "accounting_synced"),
    ("externalAccountingId", "external_accounting_id"),
    ("accountingError", "accounting_error"),
)


def plan_accounting_sync(
    principal: Principal, state: AccountingState | None, patch: AccountingPatch, now: int
) -> AccountingChange:
    """Decide what `patch` changes on this FR; raise NotFound or InvalidItems to change nothing."""
    if state is None or not principal.covers(state.account_id, state.source_id, state.channel_id):
        raise NotFound("Fulfillment request not found.")
    _check_items(patch, state)
    change = AccountingChange()
    for wire_name, column in _FIELDS:
        new = getattr(patch, column)
        old = getattr(state, column)
        if new is not UNSET and new != old:
            change.fr_columns[column] = new
            change.diff[wire_name] = {"before": old, "after": new}
    _plan_synced_at(state, change, now)
    _plan_items(patch, state, change)
    if change.fr_columns or change.item_external_ids:
        change.fr_columns["updated_at"] = now
    return change


@dataclass(frozen=True, slots=True)
class AccountingPlan:
    """`plan_accounting_sync` for one request, kept as data: a store may call it with the
    state it read (SQLite), or send the patch itself to a function in the database that
    applies the same rules in one round trip (PostgreSQL)."""

    principal: Principal
    patch: AccountingPatch
    now: int

    def __call__(self, state: AccountingState | None) -> AccountingChange:
        return plan_accounting_sync(self.principal, state, self.patch, self.now)


def _plan_synced_at(state: AccountingState, change: AccountingChange, now: int) -> None:
    # Set when accountingSynced becomes true (re-sending true keeps the first time);
    # cleared when it becomes false or null.
    if "accounting_synced" not in change.fr_columns:
        return
    if change.fr_columns["accounting_synced"] is True:
        change.fr_columns["accounting_synced_at"] = now
    else:
        change.fr_columns["accounting_synced_at"] = None


def _plan_items(patch: AccountingPatch, state: AccountingState, change: AccountingChange) -> None:
    diffs = []
    for item in patch.items or ():
        new = item.external_accounting_item_id
        old = state.item_external_ids[item.id]
        if new is not UNSET and new != old:
            change.item_external_ids[item.id] = new
            diffs.append({"id": item.id, "externalAccountingItemId": {"before": old, "after": new}})
    if diffs:
        change.diff["items"] = diffs


def _check_items(patch: AccountingPatch, state: AccountingState) -> None:
    errors: list[FieldError] = []
    bad_ids: set[int] = set()
    seen: set[int] = set()
    for index, item in enumerate(patch.items or ()):
        where = f"items[{index}].id"
        if item.id in seen:
            errors.append(FieldError(where, f"Item {item.id} is listed more than once."))
            bad_ids.add(item.id)
        elif item.id not in state.item_external_ids:
            errors.append(FieldError(where, f"Item {item.id} is not an item of this request."))
            bad_ids.add(item.id)
        seen.add(item.id)
    if errors:
        listed = ", ".join(str(i) for i in sorted(bad_ids))
        raise InvalidItems(f"Bad item ids: {listed}.", errors)
