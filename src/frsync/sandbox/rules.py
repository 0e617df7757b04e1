"""Fault rules: a matcher and an action, as data. Parsed strictly (every violation named, by
field), stored as JSON, and matched against an authenticated FR-endpoint request."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from frsync.contract import INT64_MAX, method_name, unknown_name_message
from frsync.errors import FieldError, InvalidRequest
from frsync.models import SCOPED_TOKEN_TYPES
from frsync.store.sandbox_base import StoredRule

STATUSES = (400, 401, 404, 409, 429, 500, 502, 503, 504)
MAX_DELAY_MS = 60_000
MAX_DETAIL = 4_000
MAX_RETRY_AFTER = 86_400
_RULE_KEYS = ("match", "action", "times", "skip", "probability")
_MATCH_KEYS = ("method", "path", "tokenType", "tokenId", "accountId", "fulfillmentRequestId")
_ACTION_KEYS = ("status", "retryAfter", "detail", "delayMs", "drop", "revokeToken")
_ID_KEYS = ("tokenId", "accountId", "fulfillmentRequestId")


@dataclass(frozen=True, slots=True)
class Rule:
    """A parsed rule. `match` and `action` hold only the keys that were given."""

    match: dict[str, Any]
    action: dict[str, Any]
    times: int | None = None
    probability: float | None = None
    skip: int | None = None
    id: int = 0
    remaining: int | None = None
    account_id: int | None = None  # the tenant it was made through; None: global

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "accountId": self.account_id,
            "match": self.match,
            "action": self.action,
            "times": self.times,
            "skip": self.skip,
            "probability": self.probability,
            "remaining": self.remaining,
        }

    def stored(self) -> str:
        body = {
            "match": self.match,
            "action": self.action,
            "times": self.times,
            "skip": self.skip,
            "probability": self.probability,
        }
        return msgspec.json.encode(body).decode()


@dataclass(slots=True)
class _Errors:
    found: list[FieldError] = field(default_factory=list)

    def add(self, name: str, message: str) -> None:
        self.found.append(FieldError(name, message))


def unknown_key(name: str, allowed: tuple[str, ...]) -> str:
    """The message for a key we do not know: the allowed ones, and the closest if any."""
    return unknown_name_message("field", name, allowed)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _object(value: Any, name: str, keys: tuple[str, ...], errors: _Errors) -> dict[str, Any]:
    if not isinstance(value, dict):
        errors.add(name, "must be a JSON object.")
        return {}
    for key in value:
        if key not in keys:
            errors.add(f"{name}.{key}" if name else key, unknown_key(key, keys))
    return {k: v for k, v in value.items() if k in keys}


def _check_match(match: dict[str, Any], errors: _Errors) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in match.items():
        where = f"match.{key}"
        if key == "method":
            method = method_name(value) if isinstance(value, str) else None
            if method is None:
                errors.add(where, "must be an HTTP method such as PATCH or GET (ASCII letters).")
            else:
                out[key] = method
        elif key == "path":
            if not isinstance(value, str) or not value.startswith("/") or len(value) > 2048:
                errors.add(where, "must be a path starting with `/` (a prefix ends in `*`).")
            else:
                out[key] = value
        elif key == "tokenType":
            if value not in SCOPED_TOKEN_TYPES:
                errors.add(where, f"must be one of {', '.join(SCOPED_TOKEN_TYPES)}.")
            else:
                out[key] = value
        elif not _is_int(value) or not 1 <= value <= INT64_MAX:
            errors.add(where, f"must be an integer from 1 to {INT64_MAX}.")
        else:
            out[key] = value
    return out


def _int_from(low: int, high: int) -> Callable[[Any], bool]:
    return lambda value: _is_int(value) and low <= value <= high


# Each action key: is its value right, and what to say when it is not.
_ACTION_VALUES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "status": (
        lambda value: _is_int(value) and value in STATUSES,
        f"must be one of {', '.join(map(str, STATUSES))}.",
    ),
    "delayMs": (_int_from(0, MAX_DELAY_MS), f"must be an integer from 0 to {MAX_DELAY_MS}."),
    "drop": (lambda value: value is True, "must be true (or left out)."),
    "retryAfter": (
        _int_from(0, MAX_RETRY_AFTER),
        f"must be whole seconds from 0 to {MAX_RETRY_AFTER}.",
    ),
    "detail": (
        lambda value: isinstance(value, str) and len(value) <= MAX_DETAIL and "\x00" not in value,
        f"must be a string of at most {MAX_DETAIL} characters.",
    ),
    "revokeToken": (lambda value: value is True, "must be true (or left out)."),
}


def _action_combination(action: dict[str, Any]) -> str | None:
    """What is wrong with the keys given together, if anything."""
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


def _check_action(action: dict[str, Any], errors: _Errors) -> dict[str, Any]:
    for key, value in action.items():
        valid, message = _ACTION_VALUES[key]
        if not valid(value):
            errors.add(f"action.{key}", message)
    combination = _action_combination(action)
    if combination:
        errors.add("action", combination)
    return dict(action)


def _check_count(top: dict[str, Any], key: str, low: int, errors: _Errors) -> None:
    value = top.get(key)
    if value is not None and (not _is_int(value) or not low <= value <= INT64_MAX):
        errors.add(key, f"must be an integer of at least {low} (or left out).")


def parse_rule(body: Any, tenant: int | None = None) -> Rule:
    """A rule from the decoded JSON body, or InvalidRequest naming every bad field. Made
    through a tenant, it may name no other account."""
    errors = _Errors()
    top = _object(body, "", _RULE_KEYS, errors)
    match = _check_match(_object(top.get("match", {}), "match", _MATCH_KEYS, errors), errors)
    if tenant is not None and match.get("accountId", tenant) != tenant:
        errors.add("match.accountId", f"a rule of tenant {tenant} matches only its account.")
    if "action" not in top and isinstance(body, dict):
        errors.add("action", "is required.")
    action = _check_action(_object(top.get("action", {}), "action", _ACTION_KEYS, errors), errors)
    _check_count(top, "times", 1, errors)
    _check_count(top, "skip", 0, errors)
    probability = top.get("probability")
    if probability is not None and (
        isinstance(probability, bool)
        or not isinstance(probability, int | float)
        or not 0 <= probability <= 1
    ):
        errors.add("probability", "must be a number from 0 to 1.")
    if errors.found:
        raise InvalidRequest(
            errors.found[0].message
            if len(errors.found) == 1
            else "The fault rule is invalid; see `errors`.",
            errors.found,
        )
    return Rule(
        match,
        action,
        top.get("times"),
        None if probability is None else float(probability),
        top.get("skip"),
        account_id=tenant,
    )


def rule_from_store(stored: StoredRule) -> Rule:
    body = msgspec.json.decode(stored.rule)
    return Rule(
        body["match"],
        body["action"],
        body["times"],
        body["probability"],
        body.get("skip"),
        stored.id,
        stored.remaining,
        stored.account_id,
    )


@dataclass(frozen=True, slots=True)
class Facts:
    """What a rule can match on, for one request."""

    method: str
    path: str
    token_type: str
    token_id: int
    fulfillment_request_id: int | None
    account_id: int | None


def matches(match: dict[str, Any], facts: Facts) -> bool:
    if "method" in match and match["method"] != facts.method:
        return False
    if "path" in match and not _path_matches(match["path"], facts.path):
        return False
    if "tokenType" in match and match["tokenType"] != facts.token_type:
        return False
    if "tokenId" in match and match["tokenId"] != facts.token_id:
        return False
    if "fulfillmentRequestId" in match and (
        match["fulfillmentRequestId"] != facts.fulfillment_request_id
    ):
        return False
    return "accountId" not in match or match["accountId"] == facts.account_id


def _path_matches(pattern: str, path: str) -> bool:
    if pattern.endswith("*"):
        return path.startswith(pattern[:-1])
    return path == pattern
