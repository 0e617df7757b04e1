"""Sandbox mode on PostgreSQL: the shared statements, numbered for asyncpg, through the
store's pool and transactions (so every bound and error translation of the store holds)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import asyncpg

from frsync.domain import Principal
from frsync.models import TokenType
from frsync.sandbox import sql
from frsync.sandbox.store import (
    JOURNAL_MAX_BYTES,
    JOURNAL_MAX_ROWS,
    NEXT_ID,
    TENANT_ID_BASE,
    JournalEntry,
    JournalFilter,
    NewRule,
    RuleFilter,
    StoredRule,
    TenantIds,
    TenantPlan,
    TooManyRules,
)
from frsync.store.placeholders import numbered
from frsync.store.postgres_sql import arrays

if TYPE_CHECKING:
    from frsync.store.postgres import PostgresStore

pg = numbered  # `?` marks → `$1`, `$2`, …


async def take_baseline(connection: asyncpg.Connection) -> None:
    """The store's after-load hook: remember what the load leaves, for a reset."""
    for statement in sql.TAKE_BASELINE:
        await connection.execute(statement)
    # Fresh statistics, or the planner takes the just-loaded baseline for a tiny table and a
    # reset of a few FRs scans every item (autovacuum would analyze it only a minute later).
    await connection.execute("ANALYZE sandbox_baseline_frs, sandbox_baseline_items")


# The touched FRs go in as an array: the planner then sees how few they are, and reaches
# their items through the index instead of scanning every item.
_RESTORE = tuple(pg(statement) for statement in sql.restore("IS DISTINCT FROM", "= ANY(?)"))
# A PATCH locks its FR's accounting row first (FOR NO KEY UPDATE, which takes ROW SHARE on
# the table): a
# reset holding EXCLUSIVE on the table waits for the PATCHes in flight to commit and holds
# new ones back before they lock anything, so it sees every acknowledged change and no PATCH
# lands between choosing what to restore and forgetting the history. Reads go on meanwhile.
# A large tenant's rows analyzed as soon as they are in. The foreign-key checks of its items
# and accounting rows, and at its removal those of its FRs (and their cascade), are cached
# plans, made when the tables were smaller: on a sandbox that held a few FRs they scan the
# whole table, once per row (a tenant of 10,000 FRs after one of 1,000: 8 s to create, 8 s
# to remove; 0.8 s and 0.2 s after). ANALYZE gives the planner the tables as they are and
# makes it plan those checks again.
_ANALYZE_FROM = 1_000
_ANALYZED = {
    "fr": "fulfillment_requests",
    "accounting": "fulfillment_request_accounting",
    "item": "fulfillment_request_items",
}
_EXCLUDE_WRITERS = "LOCK TABLE fulfillment_request_accounting IN EXCLUSIVE MODE"
# Removing a tenant's rows takes the same table first (ROW EXCLUSIVE, which a DELETE would
# take later anyway): otherwise a purge holding some of a tenant's rows and a reset holding
# the table each waited for the other, and PostgreSQL ended one of them as a deadlock (seen
# in bench/sandbox_reset.py). One order, so one waits for the other to commit.
_BEFORE_TENANT_ROWS = "LOCK TABLE fulfillment_request_accounting IN ROW EXCLUSIVE MODE"
# Rules are bounded per tenant and overall: two workers adding at once count one at a time.
_RULES_LOCK = "SELECT pg_advisory_xact_lock(7270001)"


class PostgresSandboxStore:
    def __init__(self, store: PostgresStore) -> None:
        self._store = store

    async def reset(self) -> None:
        # Unbounded, like a load: after a test that changed every FR, a reset of a large
        # database legitimately takes longer than an API call may (lock waits stay bounded).
        async with self._store.transaction(bounded=False) as connection:
            await connection.execute(_EXCLUDE_WRITERS)
            await connection.execute(sql.CLEAR_TENANTS)  # rows go in `purge_removed_tenants`
            mark = await connection.fetchval(sql.BASELINE_MARK_SQL)
            if mark is not None:  # no load since sandbox mode existed: nothing to go back to
                rows = await connection.fetch(pg(sql.TOUCHED), mark)
                touched = [row[0] for row in rows]
                if touched:
                    for statement in _RESTORE:
                        await connection.execute(statement, touched)
                    await connection.execute(pg(sql.FORGET_HISTORY), mark)
            await connection.execute(sql.CLEAR_RULES)
            await connection.execute(sql.BUMP_RULES_VERSION)
            await connection.execute(sql.CLEAR_JOURNAL)

    async def create_tenant(self, plan: TenantPlan) -> TenantIds:
        count = plan.id_count
        async with self._store.transaction() as connection:
            last = await connection.fetchval(
                pg(sql.RESERVE_IDS), NEXT_ID, TENANT_ID_BASE + count, count
            )
            ids, rows = sql.tenant_rows(plan, int(last) - count)
            for kind, statement, params in sql.tenant_statements(rows, arrays):
                await connection.executemany(pg(statement), params)
                if kind in _ANALYZED and plan.fulfillment_requests >= _ANALYZE_FROM:
                    await connection.execute(f"ANALYZE {_ANALYZED[kind]}")
            first = ids.account_id
            tokens = await connection.fetch(pg(sql.ISSUED_IDS), first, first + 1, first + 2)
        ids.token_ids.update({row[1]: int(row[0]) for row in tokens})
        return ids

    async def delete_tenant(self, account_id: int) -> bool | None:
        async with self._store.transaction() as connection:
            await connection.execute(_BEFORE_TENANT_ROWS)
            live = await connection.fetchrow(pg(sql.LIVE_TENANT + " FOR UPDATE"), account_id)
            if live is None:
                last = await connection.fetchval(pg(sql.NEXT_TENANT_ID), NEXT_ID)
                return False if last and TENANT_ID_BASE <= account_id < last else None
            for statement, params in sql.removal(account_id):
                await connection.execute(pg(statement), *params)
            await connection.execute(sql.BUMP_RULES_VERSION)
        return True

    async def purge_removed_tenants(self) -> int:
        async with self._store.transaction() as connection:
            await connection.execute(_BEFORE_TENANT_ROWS)
            rows = await connection.fetch(pg(sql.PURGE_CANDIDATES), TENANT_ID_BASE, sql.PURGE_CHUNK)
            accounts = [row[0] for row in rows]
            for statement, offsets in sql.REMOVE_TENANT:
                params = [tuple(a + k for k in offsets) for a in accounts]
                if params:
                    await connection.executemany(pg(statement), params)
        return len(accounts)

    async def request_state(self, account_id: int | None) -> tuple[int, bool]:
        async with self._store.acquire() as connection:
            row = await connection.fetchrow(pg(sql.REQUEST_STATE), account_id)
        return int(row[0] or 0), bool(row[1])

    async def is_tenant(self, account_id: int) -> bool:
        return await self._fetchval(sql.LIVE_TENANT, account_id) is not None

    async def add_rule(self, rule: NewRule) -> int:
        async with self._store.transaction() as connection:
            await connection.execute(_RULES_LOCK)
            await connection.execute(sql.PURGE_SPENT)
            total = await connection.fetchval(sql.COUNT_RULES)
            of_tenant = None
            if rule.account_id is not None:
                of_tenant = await connection.fetchval(pg(sql.COUNT_TENANT_RULES), rule.account_id)
            refused = sql.rule_bound_error(total, of_tenant)
            if refused:
                raise TooManyRules(refused)
            params = (rule.rule, rule.remaining, rule.now, rule.account_id, rule.skip)
            rule_id = await connection.fetchval(pg(sql.ADD_RULE), *params)
            await connection.execute(sql.BUMP_RULES_VERSION)
        return int(rule_id)

    async def rules(self) -> list[StoredRule]:
        async with self._store.acquire() as connection:
            rows = await connection.fetch(sql.RULES_SQL)
        return [StoredRule(*row) for row in rows]

    async def list_rules(self, where: RuleFilter) -> list[StoredRule]:
        statement, params = sql.rules_query(where)
        async with self._store.acquire() as connection:
            rows = await connection.fetch(pg(statement), *params)
        return [StoredRule(*row) for row in rows]

    async def skip(self, rule_id: int) -> bool:
        return await self._execute(sql.SKIP_SQL, rule_id) == "UPDATE 1"

    async def fire(self, rule_id: int) -> bool:
        return await self._execute(sql.FIRE_SQL, rule_id) == "UPDATE 1"

    async def delete_rule(self, rule_id: int, account_id: int | None) -> bool:
        async with self._store.transaction() as connection:
            if account_id is None:
                status = await connection.execute(pg(sql.DELETE_RULE), rule_id)
            else:
                status = await connection.execute(pg(sql.DELETE_TENANT_RULE), rule_id, account_id)
            await connection.execute(sql.BUMP_RULES_VERSION)
        return bool(status == "DELETE 1")

    async def clear_rules(self, account_id: int | None) -> None:
        async with self._store.transaction() as connection:
            if account_id is None:
                await connection.execute(sql.CLEAR_RULES)
            else:
                await connection.execute(pg(sql.CLEAR_TENANT_RULES), account_id)
            await connection.execute(sql.BUMP_RULES_VERSION)

    async def account_of(self, token_type: TokenType, scope_id: int) -> int | None:
        if token_type not in sql.ACCOUNT_OF:
            return None
        account = await self._fetchval(sql.ACCOUNT_OF[token_type], scope_id)
        return None if account is None else int(account)

    async def known_tokens(self, hashes: list[bytes]) -> set[bytes]:
        async with self._store.acquire() as connection:
            rows = await connection.fetch(
                "SELECT token_hash FROM api_tokens WHERE token_hash = ANY($1)", hashes
            )
        return {bytes(row[0]) for row in rows}

    async def revoked_token(self, token_hash: bytes) -> Principal | None:
        async with self._store.acquire() as connection:
            row = await connection.fetchrow(pg(sql.REVOKED_BY_HASH), token_hash)
        return None if row is None else Principal(int(row[0]), row[1], int(row[2]))

    async def record(self, entry: JournalEntry) -> None:
        values = [*(getattr(entry, column) for column in sql.JOURNAL_COLUMNS), entry.size]
        account = entry.account_id
        unknown = account is None
        keep = sql.journal_keep(account)
        async with self._store.acquire() as connection:
            entry_id = await connection.fetchval(pg(sql.JOURNAL_INSERT), *values)
            by_account = () if unknown else (account,)
            if entry_id % sql.JOURNAL_TRIM_EVERY == 0:
                cut = await connection.fetchval(
                    pg(sql.JOURNAL_KEEP_FROM[unknown]), *by_account, keep
                )
                if cut is not None:
                    await connection.execute(
                        pg(sql.JOURNAL_TRIM_ACCOUNT[unknown]), *by_account, cut
                    )
            if entry_id % sql.JOURNAL_CHECK_EVERY == 0:
                await _bound_journal(connection)

    async def journal(self, where: JournalFilter) -> list[tuple[Any, ...]]:
        statement, params = sql.journal_query(where)
        async with self._store.acquire() as connection:
            rows = await connection.fetch(pg(statement), *params)
        return [tuple(row) for row in rows]

    async def clear_journal(self, account_id: int | None) -> None:
        if account_id is None:
            await self._execute(sql.CLEAR_JOURNAL)
        else:
            await self._execute(sql.CLEAR_TENANT_JOURNAL, account_id)

    async def _execute(self, statement: str, *args: Any) -> str:
        async with self._store.acquire() as connection:
            status: str = await connection.execute(pg(statement), *args)
        return status

    async def _fetchval(self, statement: str, *args: Any) -> Any:
        async with self._store.acquire() as connection:
            return await connection.fetchval(pg(statement), *args)


async def _bound_journal(connection: asyncpg.Connection) -> None:
    rows, size = await connection.fetchrow(sql.JOURNAL_TOTALS)
    if rows > JOURNAL_MAX_ROWS or size > JOURNAL_MAX_BYTES:
        cut = await connection.fetchval(
            pg(sql.JOURNAL_CUT), JOURNAL_MAX_BYTES * 9 // 10, JOURNAL_MAX_ROWS * 9 // 10
        )
        if cut is not None:
            await connection.execute(pg(sql.JOURNAL_TRIM), cut)
