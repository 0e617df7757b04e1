"""Firing fault rules: checked once the token is authenticated, before its bucket is charged
or anything of the request is read, so a forced answer never spends the bucket or applies
the request.

Rules and their counters live in the database: every worker reads the same rules, and a rule
with `times` counts down with one conditional UPDATE (`… WHERE remaining > 0`), so N firings
happen exactly N times however many workers race for them.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from frsync.api.problems import HTTP_TITLES, problem_response
from frsync.contract import INT64_MAX
from frsync.domain import Principal
from frsync.errors import FrsyncError
from frsync.sandbox.rules import Facts, Rule, matches, rule_from_store
from frsync.store.sandbox_base import SandboxStore, StoredRule

DROP_SCOPE_KEY = "frsync.drop"  # set on the scope when the connection is to be dropped
FR_ID = "fulfillmentRequestId"
_TITLES = {
    **HTTP_TITLES,
    400: "Bad Request",
    401: "Unauthorized",
    409: "Conflict",
    429: "Too Many Requests",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


class ForcedAnswer(FrsyncError):
    """A fault rule's status answer."""

    def __init__(self, status: int, detail: str, retry_after: int | None) -> None:
        super().__init__(detail)
        self.status = status
        self.retry_after = retry_after


class DropConnection(FrsyncError):
    """A fault rule's dropped connection: no answer at all."""


class FaultInjector:
    def __init__(self, store: SandboxStore, roll: Callable[[], float] = random.random) -> None:
        self._store = store
        self._roll = roll

    async def apply(self, request: Request, principal: Principal) -> None:
        """Fire the first rule that matches this request, if any: wait out its delay, then
        raise ForcedAnswer or DropConnection for a status or a drop."""
        rules = await self._store.rules()
        if not rules:
            return
        rule = await self._first_firing(request, principal, rules_of(rules))
        if rule is None:
            return
        action = rule.action
        if "delayMs" in action:
            await asyncio.sleep(action["delayMs"] / 1000)  # the loop serves others meanwhile
        if "status" in action:
            raise _forced(action)
        if action.get("drop"):
            request.scope[DROP_SCOPE_KEY] = True
            raise DropConnection("The connection was dropped by a sandbox fault rule.")

    async def _first_firing(
        self, request: Request, principal: Principal, rules: list[Rule]
    ) -> Rule | None:
        facts = Facts(
            request.method,
            request.url.path,
            principal.token_type,
            principal.token_id,
            _fr_id(request),
        )
        account: list[int | None] = []  # looked up once, and only if a rule asks
        for rule in rules:
            if "accountId" in rule.match and not account:
                account.append(
                    await self._store.account_of(principal.token_type, principal.scope_id)
                )
            if not matches(rule.match, facts, account[0] if account else None):
                continue
            if rule.probability is not None and self._roll() >= rule.probability:
                continue  # a failed roll counts as not matching
            if rule.remaining is not None and not await self._store.fire(rule.id):
                continue  # another request took its last firing
            return rule
        return None


def rules_of(stored: list[StoredRule]) -> list[Rule]:
    return [rule_from_store(s.id, s.rule, s.remaining) for s in stored]


def _fr_id(request: Request) -> int | None:
    raw = request.path_params.get(FR_ID)
    if isinstance(raw, str) and raw.isdigit() and len(raw) <= 19 and int(raw) <= INT64_MAX:
        return int(raw)
    return None


def _forced(action: dict[str, Any]) -> ForcedAnswer:
    status = int(action["status"])
    retry_after = action.get("retryAfter")
    if retry_after is None and status in (429, 503):
        retry_after = 1
    default = f"Forced {status} by a sandbox fault rule."
    detail = str(action.get("detail") or default)
    return ForcedAnswer(status, detail, None if retry_after is None else int(retry_after))


def forced_response(error: ForcedAnswer, request_id: str | None) -> Response:
    """The forced answer in the one problem+json shape."""
    title = _TITLES.get(error.status, "Error")
    slug = "sandbox-" + title.lower().replace(" ", "-")
    headers = {} if error.retry_after is None else {"Retry-After": str(error.retry_after)}
    return problem_response(
        error.status, title, slug, error.detail, request_id=request_id, headers=headers
    )
