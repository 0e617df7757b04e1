"""What the admin API does, apart from HTTP: reset, tenants, and reading its inputs."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from frsync.api.params import BadValue, Parsers, QueryParams, int_between, parse_query
from frsync.contract import method_name
from frsync.errors import FieldError, InvalidRequest
from frsync.models import SCOPED_TOKEN_TYPES, TokenType, now_ms
from frsync.ratelimit import RateLimitStore
from frsync.sandbox.purge import Purger
from frsync.sandbox.rules import Rule, parse_rule, unknown_key
from frsync.sandbox.store import (
    MAX_RULES,
    JournalFilter,
    NewRule,
    RuleFilter,
    SandboxStore,
    TenantIds,
    TenantPlan,
)
from frsync.tokens import hash_token, new_token

MAX_TENANT_FRS = 10_000
MAX_ITEMS_PER_FR = 50
MAX_JOURNAL_PAGE = 1_000
_TENANT_KEYS = ("fulfillmentRequests", "itemsPerRequest")


@dataclass(frozen=True, slots=True)
class Tenant:
    ids: TenantIds
    tokens: dict[TokenType, str]  # plaintext, shown once

    def to_json(self) -> dict[str, Any]:
        return {
            "accountId": self.ids.account_id,
            "sourceId": self.ids.source_id,
            "channelId": self.ids.channel_id,
            "tokens": self.tokens,
            "tokenIds": self.ids.token_ids,
            "fulfillmentRequestIds": self.ids.fulfillment_request_ids,
        }


async def reset(store: SandboxStore, limiter: RateLimitStore, purger: Purger) -> None:
    """Back to the last load: data, history, tenants, rules and journal; then every bucket.
    The removed tenants' rows are deleted in the background (see purge.py)."""
    await store.reset()
    purger.kick()
    await limiter.reset()


def _count(
    body: dict[str, Any], key: str, default: int, high: int, errors: list[FieldError]
) -> int:
    value = body.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high:
        errors.append(FieldError(key, f"must be an integer from 1 to {high:,}."))
        return default
    return value


def tenant_plan(body: Any) -> tuple[int, int]:
    """(FRs, items per FR) from the POST /__admin/tenants body (`{}`: the defaults)."""
    if not isinstance(body, dict):
        raise InvalidRequest("The body must be a JSON object.", [FieldError("", "not an object")])
    errors = [
        FieldError(key, unknown_key(key, _TENANT_KEYS)) for key in body if key not in _TENANT_KEYS
    ]
    frs = _count(body, "fulfillmentRequests", 10, MAX_TENANT_FRS, errors)
    items = _count(body, "itemsPerRequest", 2, MAX_ITEMS_PER_FR, errors)
    if errors:
        raise InvalidRequest(
            errors[0].message
            if len(errors) == 1
            else "The tenant request is invalid; see `errors`.",
            errors,
        )
    return frs, items


async def create_tenant(store: SandboxStore, frs: int, items: int) -> Tenant:
    tokens: dict[TokenType, str] = {kind: new_token() for kind in SCOPED_TOKEN_TYPES}
    hashes = {kind: hash_token(token) for kind, token in tokens.items()}
    ids = await store.create_tenant(TenantPlan(frs, items, hashes, now_ms()))
    return Tenant(ids, tokens)


def _method(raw: str) -> str:
    method = method_name(raw)
    if method is None:
        raise BadValue("Must be an HTTP method such as PATCH (ASCII letters).")
    return method


def _path(raw: str) -> str:
    if not raw.startswith("/"):
        raise BadValue("Must start with `/` (a prefix ends in `*`).")
    return raw


_JOURNAL_PARAMS: Parsers = {
    "method": ("method", _method),
    "path": ("path", _path),
    "status": ("status", int_between(100, 599)),
    "tokenId": ("token_id", int_between(1)),
    "accountId": ("account_id", int_between(1)),
    "beforeId": ("before_id", int_between(1)),
    "limit": ("limit", int_between(1, MAX_JOURNAL_PAGE)),
}
_RULE_PARAMS: Parsers = {
    "accountId": ("account_id", int_between(1)),
    "afterId": ("after_id", int_between(0)),
    "limit": ("limit", int_between(1, MAX_RULES)),
}


def journal_filter(params: QueryParams, tenant: int | None = None) -> JournalFilter:
    """The journal's filters and paging, parsed by the API's one query parser; a tenant's
    journal is that tenant's entries whatever `accountId` says."""
    where = parse_query(params, _JOURNAL_PARAMS)
    if tenant is not None:
        where["account_id"] = tenant
    return JournalFilter(**where)


def rule_filter(params: QueryParams, tenant: int | None = None) -> RuleFilter:
    """The fault rule listing's filter and paging (creation order, after `afterId`)."""
    where = parse_query(params, _RULE_PARAMS)
    if tenant is not None:
        where["account_id"] = tenant
    return RuleFilter(**where)


async def add_rule(store: SandboxStore, body: Any, tenant: int | None = None) -> Rule:
    """Parse and store a rule (a tenant's, when `tenant` is given); the rule with its id."""
    rule = parse_rule(body, tenant)
    times = rule.body.times
    rule_id = await store.add_rule(NewRule(rule.stored(), times, rule.body.skip, tenant, now_ms()))
    return dataclasses.replace(rule, id=rule_id, remaining=times)
