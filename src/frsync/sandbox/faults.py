"""Firing fault rules: checked once the token is authenticated, before its bucket is charged
or anything of the request is read, so a forced answer never spends the bucket or applies
the request.

Rules and their counters live in the database, so every worker sees the same rules. Each
worker keeps its own copy of the live rules, indexed by tenant, and reloads it only when the
rules' version stamp has changed (one small read per request, which also says whether a
tenant's token still belongs to a live tenant): matching costs the same with
1 or 10,000 rules. `skip`, `times` and their counters stay in the database, each counted down
by one conditional UPDATE (`… WHERE remaining > 0`), so N firings happen exactly N times
however many workers race for them.
"""

from __future__ import annotations

import asyncio
import heapq
import random
from collections.abc import Callable, Iterator

from starlette.requests import Request
from starlette.responses import Response

from frsync.api.auth import PRINCIPAL_SCOPE_KEY, UNAUTHENTICATED
from frsync.api.problems import HTTP_TITLES, problem_response
from frsync.contract import canonical_int
from frsync.domain import Principal
from frsync.errors import FrsyncError, Unauthenticated
from frsync.sandbox.rules import Action, Facts, Rule, rule_from_store
from frsync.sandbox.store import TENANT_ID_BASE, SandboxStore, is_tenant_id
from frsync.store import Store

DROP_SCOPE_KEY = "frsync.drop"  # set on the scope when the connection is to be dropped
ACCOUNT_SCOPE_KEY = "frsync.account"  # the caller's account, for the journal
FR_ID = "fulfillmentRequestId"
# A tenant's source and channel ids follow its account id (see sandbox_sql.tenant_rows).
_TENANT_OFFSET = {"account": 0, "source": 1, "channel": 2}
_MAX_CACHED_ACCOUNTS = 10_000


class ForcedAnswer(FrsyncError):
    """A fault rule's status answer."""

    def __init__(self, status: int, detail: str, retry_after: int | None) -> None:
        super().__init__(detail)
        self.status = status
        self.retry_after = retry_after


class DropConnection(FrsyncError):
    """A fault rule's dropped connection: no answer at all."""


class Accounts:
    """The account a token acts for. A tenant's ids say it without a query; another source or
    channel costs one lookup, then is remembered (a bounded map: ids are never reused)."""

    def __init__(self, store: SandboxStore) -> None:
        self._store = store
        self._known: dict[tuple[str, int], int | None] = {}

    async def of(self, principal: Principal) -> int | None:
        kind, scope = principal.token_type, principal.scope_id
        if kind == "account" or (kind in _TENANT_OFFSET and scope >= TENANT_ID_BASE):
            return scope - _TENANT_OFFSET[kind]
        key = (kind, scope)
        if key not in self._known:
            if len(self._known) >= _MAX_CACHED_ACCOUNTS:
                self._known.clear()
            self._known[key] = await self._store.account_of(kind, scope)
        return self._known[key]

    async def live(self, principal: Principal) -> bool:
        """False for a removed tenant's token, whose row a purge has yet to delete: the
        console refuses it (sign-in and pages) as the API's fault hook does."""
        account = await self.of(principal)
        if not is_tenant_id(account):
            return True
        return await self._store.is_tenant(account)

    async def of_revoked(self, token_hash: bytes) -> tuple[Principal, int] | None:
        """The principal a revoked token had and its account, so the request it was refused
        lands in that account's journal; None for an unknown token or a removed tenant's
        (whose journal went with it)."""
        principal = await self._store.revoked_token(token_hash)
        account = None if principal is None else await self.of(principal)
        if principal is None or account is None:
            return None
        if is_tenant_id(account) and not await self._store.is_tenant(account):
            return None
        return principal, account


class RuleIndex:
    """This worker's copy of the live rules: the global ones and each tenant's, in creation
    order, reloaded when the version stamp changes."""

    def __init__(self, store: SandboxStore) -> None:
        self._store = store
        self._version: int | None = None
        self._global: list[Rule] = []
        self._by_account: dict[int, list[Rule]] = {}
        self.spent: set[int] = set()  # counted out here; gone at the next reload
        self.skips_done: set[int] = set()

    async def candidates(self, version: int, account_id: int | None) -> Iterator[Rule]:
        """The rules that may apply to a request of `account_id`, oldest first, as of the
        rules' `version` stamp."""
        if version != self._version:
            await self._reload(version)
        own = self._by_account.get(account_id, []) if account_id is not None else []
        merged = heapq.merge(self._global, own, key=lambda rule: rule.id) if own else self._global
        return (rule for rule in merged if rule.id not in self.spent)

    async def _reload(self, version: int) -> None:
        rules = [rule_from_store(stored) for stored in await self._store.rules()]
        by_account: dict[int, list[Rule]] = {}
        for rule in rules:
            if rule.account_id is not None:
                by_account.setdefault(rule.account_id, []).append(rule)
        self._global = [rule for rule in rules if rule.account_id is None]
        self._by_account = by_account
        self.spent = set()
        self.skips_done = set()
        self._version = version


class FaultInjector:
    def __init__(
        self,
        store: SandboxStore,
        tokens: Store,
        accounts: Accounts,
        roll: Callable[[], float] = random.random,
    ) -> None:
        self._store = store
        self._tokens = tokens  # the API's store, to revoke a token for real
        self._accounts = accounts
        self._index = RuleIndex(store)
        self._roll = roll

    async def apply(self, request: Request, principal: Principal) -> None:
        """Fire the first rule that matches this request, if any: wait out its delay, then
        raise ForcedAnswer or DropConnection for a status or a drop."""
        account = await self._accounts.of(principal)
        tenant = account if is_tenant_id(account) else None
        # One read for the rules' version and the tenant's liveness: the API's check that a
        # removed tenant's token opens nothing is here, the console's is `Accounts.live`.
        version, live = await self._store.request_state(tenant)
        if tenant is not None and not live:
            # A removed tenant's token, whose row a purge has yet to delete: refused as if
            # it were gone already, and journalled as a request without a valid token.
            del request.scope[PRINCIPAL_SCOPE_KEY]
            raise Unauthenticated(UNAUTHENTICATED)
        request.scope[ACCOUNT_SCOPE_KEY] = account
        facts = Facts(
            request.method,
            request.url.path,
            principal.token_type,
            principal.token_id,
            _fr_id(request),
            account,
        )
        rule = await self._first_firing(version, facts)
        if rule is None:
            return
        action = rule.body.action
        if isinstance(action.delay_ms, int):
            await asyncio.sleep(action.delay_ms / 1000)  # the loop serves others meanwhile
        if action.revoke_token is True:
            await self._tokens.revoke_token(principal.token_id)
        if isinstance(action.status, int):
            raise _forced(action.status, action)
        if action.drop is True:
            request.scope[DROP_SCOPE_KEY] = True
            raise DropConnection("The connection was dropped by a sandbox fault rule.")

    async def _first_firing(self, version: int, facts: Facts) -> Rule | None:
        index = self._index
        for rule in await index.candidates(version, facts.account_id):
            body = rule.body
            if not body.match.holds(facts):
                continue
            if body.probability is not None and self._roll() >= body.probability:
                continue  # a failed roll counts as not matching
            if body.skip and rule.id not in index.skips_done:
                if await self._store.skip(rule.id):
                    continue  # let through: one of its first `skip` matching requests
                index.skips_done.add(rule.id)
            if body.times is not None and not await self._store.fire(rule.id):
                index.spent.add(rule.id)
                continue  # another request took its last firing
            return rule
        return None


def _fr_id(request: Request) -> int | None:
    raw = request.path_params.get(FR_ID)
    return canonical_int(raw) if isinstance(raw, str) else None


def _forced(status: int, action: Action) -> ForcedAnswer:
    retry_after = action.retry_after if isinstance(action.retry_after, int) else None
    if retry_after is None and status in (429, 503):
        retry_after = 1
    given = action.detail if isinstance(action.detail, str) else ""
    detail = given or f"Forced {status} by a sandbox fault rule."
    return ForcedAnswer(status, detail, retry_after)


def forced_response(error: ForcedAnswer, request_id: str | None) -> Response:
    """The forced answer in the one problem+json shape."""
    title = HTTP_TITLES.get(error.status, "Error")
    slug = "sandbox-" + title.lower().replace(" ", "-")
    headers = {} if error.retry_after is None else {"Retry-After": str(error.retry_after)}
    return problem_response(
        error.status, title, slug, error.detail, request_id=request_id, headers=headers
    )
