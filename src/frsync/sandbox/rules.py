"""Fault rules: a matcher and an action, as data. The body of `POST …/faults` is typed by the
msgspec structs below; it is checked field by field against those same types, so that every
violation is named (msgspec stops at the first), stored as JSON, and matched against an
authenticated FR-endpoint request.

The action keys go together in a few shapes only (a status, a delay, both, a drop), told apart
by which keys are given: the wire has no tag to make them a msgspec tagged union, so one
struct takes every key and `_combination_problem` says which sets are allowed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal, get_args

import msgspec
from msgspec import UNSET, Meta, UnsetType

from frsync.contract import INT64_MAX, METHOD_PATTERN, unknown_name_message
from frsync.errors import FieldError, InvalidRequest
from frsync.models import SCOPED_TOKEN_TYPES, ScopedTokenType
from frsync.sandbox.store import StoredRule

MAX_DELAY_MS = 60_000
MAX_DETAIL = 4_000
MAX_RETRY_AFTER = 86_400
MAX_PATH = 2_048

Id = Annotated[int, Meta(ge=1, le=INT64_MAX)]
Status = Literal[400, 401, 404, 409, 429, 500, 502, 503, 504]
STATUSES: tuple[int, ...] = get_args(Status)
Detail = Annotated[str, Meta(max_length=MAX_DETAIL, pattern=r"\A[^\x00]*\Z")]  # no U+0000


class Match(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    """What a request must be for the rule to fire: only the keys given, all of them."""

    method: Annotated[str, Meta(pattern=METHOD_PATTERN)] | UnsetType = UNSET
    path: Annotated[str, Meta(pattern=r"\A/", max_length=MAX_PATH)] | UnsetType = UNSET
    token_type: ScopedTokenType | UnsetType = UNSET
    token_id: Id | UnsetType = UNSET
    account_id: Id | UnsetType = UNSET
    fulfillment_request_id: Id | UnsetType = UNSET

    def __post_init__(self) -> None:
        if isinstance(self.method, str):
            self.method = self.method.upper()  # ASCII letters only (the pattern): nothing folds

    def holds(self, facts: Facts) -> bool:
        wanted = (
            (self.method, facts.method),
            (self.token_type, facts.token_type),
            (self.token_id, facts.token_id),
            (self.account_id, facts.account_id),
            (self.fulfillment_request_id, facts.fulfillment_request_id),
        )
        if any(want is not UNSET and want != got for want, got in wanted):
            return False
        return isinstance(self.path, UnsetType) or _path_matches(self.path, facts.path)


class Action(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    """What the rule does when it fires; which keys may go together: `_combination_problem`."""

    status: Status | UnsetType = UNSET
    retry_after: Annotated[int, Meta(ge=0, le=MAX_RETRY_AFTER)] | UnsetType = UNSET
    detail: Detail | UnsetType = UNSET
    delay_ms: Annotated[int, Meta(ge=0, le=MAX_DELAY_MS)] | UnsetType = UNSET
    drop: Literal[True] | UnsetType = UNSET
    revoke_token: Literal[True] | UnsetType = UNSET


class RuleBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The body of `POST /__admin/faults` (and a tenant's), as it is stored."""

    match: Match = msgspec.field(default_factory=Match)
    action: Action
    times: Annotated[int, Meta(ge=1, le=INT64_MAX)] | None = None
    skip: Annotated[int, Meta(ge=0, le=INT64_MAX)] | None = None
    probability: Annotated[float, Meta(ge=0, le=1)] | None = None


_ID_MESSAGE = f"must be an integer from 1 to {INT64_MAX}."
_ONLY_TRUE = "must be true (or left out)."
# What each field's type refuses, said the contract's way (msgspec's own words name types).
_MESSAGES = {
    "match.method": "must be an HTTP method such as PATCH or GET (ASCII letters).",
    "match.path": "must be a path starting with `/` (a prefix ends in `*`).",
    "match.tokenType": f"must be one of {', '.join(SCOPED_TOKEN_TYPES)}.",
    "match.tokenId": _ID_MESSAGE,
    "match.accountId": _ID_MESSAGE,
    "match.fulfillmentRequestId": _ID_MESSAGE,
    "action.status": f"must be one of {', '.join(map(str, STATUSES))}.",
    "action.retryAfter": f"must be whole seconds from 0 to {MAX_RETRY_AFTER}.",
    "action.detail": f"must be a string of at most {MAX_DETAIL} characters.",
    "action.delayMs": f"must be an integer from 0 to {MAX_DELAY_MS}.",
    "action.drop": _ONLY_TRUE,
    "action.revokeToken": _ONLY_TRUE,
    "times": "must be an integer of at least 1 (or left out).",
    "skip": "must be an integer of at least 0 (or left out).",
    "probability": "must be a number from 0 to 1.",
}


@dataclass(frozen=True, slots=True)
class Rule:
    """A parsed rule, with what the store keeps beside it."""

    body: RuleBody
    id: int = 0
    remaining: int | None = None
    account_id: int | None = None  # the tenant it was made through; None: global

    def to_json(self) -> dict[str, Any]:
        body = self.body
        return {
            "id": self.id,
            "accountId": self.account_id,
            "match": body.match,
            "action": body.action,
            "times": body.times,
            "skip": body.skip,
            "probability": body.probability,
            "remaining": self.remaining,
        }

    def stored(self) -> str:
        return msgspec.json.encode(self.body).decode()


def unknown_key(name: str, allowed: tuple[str, ...]) -> str:
    """The message for a key we do not know: the allowed ones, and the closest if any."""
    return unknown_name_message("field", name, allowed)


def parse_rule(body: Any, tenant: int | None = None) -> Rule:
    """A rule from the decoded JSON body, or InvalidRequest naming every bad field. Made
    through a tenant, it may name no other account."""
    errors = [*_violations(body, RuleBody), *_combination(body), *_foreign_account(body, tenant)]
    if errors:
        raise InvalidRequest(
            errors[0].message if len(errors) == 1 else "The fault rule is invalid; see `errors`.",
            errors,
        )
    return Rule(msgspec.convert(body, RuleBody), account_id=tenant)


def _violations(value: Any, struct: type[msgspec.Struct], where: str = "") -> Iterator[FieldError]:
    """Every key of `value` that `struct` does not know, and every value its field's type
    refuses, each checked alone; nested structs likewise."""
    if not isinstance(value, dict):
        yield FieldError(where, "must be a JSON object.")
        return
    fields = {info.encode_name: info for info in msgspec.structs.fields(struct)}
    for key in value:
        if key not in fields:
            yield FieldError(_at(where, key), unknown_key(key, tuple(fields)))
    for name, info in fields.items():
        yield from _field_violations(value, info, _at(where, name))


def _field_violations(
    value: dict[str, Any], info: msgspec.structs.FieldInfo, where: str
) -> Iterator[FieldError]:
    if info.encode_name not in value:
        if info.required:
            yield FieldError(where, "is required.")
    elif isinstance(info.type, type) and issubclass(info.type, msgspec.Struct):
        yield from _violations(value[info.encode_name], info.type, where)
    elif not _fits(value[info.encode_name], info.type):
        yield FieldError(where, _MESSAGES[where])


def _at(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _fits(value: Any, kind: Any) -> bool:
    try:
        msgspec.convert(value, kind)
    except msgspec.ValidationError:
        return False
    return True


def _part(body: Any, name: str) -> dict[str, Any]:
    """`body[name]` when both are objects, else {} (`_violations` names what is wrong)."""
    part = body.get(name) if isinstance(body, dict) else None
    return part if isinstance(part, dict) else {}


def _combination(body: Any) -> Iterator[FieldError]:
    # A missing or non-object action has no keys: besides its own error, it is told what an
    # action needs.
    problem = _combination_problem(_part(body, "action"))
    if problem:
        yield FieldError("action", problem)


def _combination_problem(action: dict[str, Any]) -> str | None:
    """What is wrong with the action's keys given together, if anything (whatever their
    values: those `_violations` checks)."""
    given = action.keys()
    if not ({"status", "delayMs", "drop"} & given):
        return "needs `status`, `delayMs` or `drop`."
    if ("retryAfter" in given or "detail" in given) and "status" not in given:
        return "`retryAfter` and `detail` go with a `status`."
    if "drop" in given and "status" in given:
        return "a dropped connection has no status: give `drop` or `status`."
    if "revokeToken" in given and action.get("status") != 401:
        return "`revokeToken` goes with `status` 401."
    return None


def _foreign_account(body: Any, tenant: int | None) -> Iterator[FieldError]:
    account = _part(body, "match").get("accountId", tenant)
    if tenant is not None and account != tenant and _fits(account, Id):
        yield FieldError("match.accountId", f"a rule of tenant {tenant} matches only its account.")


def rule_from_store(stored: StoredRule) -> Rule:
    body = msgspec.json.decode(stored.rule, type=RuleBody)
    return Rule(body, stored.id, stored.remaining, stored.account_id)


@dataclass(frozen=True, slots=True)
class Facts:
    """What a rule can match on, for one request."""

    method: str
    path: str
    token_type: str
    token_id: int
    fulfillment_request_id: int | None
    account_id: int | None


def _path_matches(pattern: str, path: str) -> bool:
    if pattern.endswith("*"):
        return path.startswith(pattern[:-1])
    return path == pattern
