"""Fault rules: a matcher and an action, as data. Parsed strictly (every violation named, by
field), stored as JSON, and matched against an authenticated FR-endpoint request."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec

from frsync.contract import INT64_MAX, unknown_name_message
from frsync.errors import FieldError, InvalidRequest
from frsync.models import SCOPED_TOKEN_TYPES

STATUSES = (400, 401, 404, 409, 429, 500, 502, 503, 504)
MAX_DELAY_MS = 60_000
MAX_DETAIL = 4_000
MAX_RETRY_AFTER = 86_400
_RULE_KEYS = ("match", "action", "times", "probability")
_MATCH_KEYS = ("method", "path", "tokenType", "tokenId", "accountId", "fulfillmentRequestId")
_ACTION_KEYS = ("status", "retryAfter", "detail", "delayMs", "drop")
_ID_KEYS = ("tokenId", "accountId", "fulfillmentRequestId")


@dataclass(frozen=True, slots=True)
class Rule:
    """A parsed rule. `match` and `action` hold only the keys that were given."""

    match: dict[str, Any]
    action: dict[str, Any]
    times: int | None = None
    probability: float | None = None
    id: int = 0
    remaining: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "match": self.match,
            "action": self.action,
            "times": self.times,
            "probability": self.probability,
            "remaining": self.remaining,
        }

    def stored(self) -> str:
        body = {
            "match": self.match,
            "action": self.action,
            "times": self.times,
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
            if not isinstance(value, str) or not value.isalpha() or len(value) > 16:
                errors.add(where, "must be an HTTP method such as PATCH or GET.")
            else:
                out[key] = value.upper()
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


def _check_action(action: dict[str, Any], errors: _Errors) -> dict[str, Any]:
    status: Any = action.get("status")
    delay: Any = action.get("delayMs")
    drop: Any = action.get("drop")
    if "status" in action and (not _is_int(status) or status not in STATUSES):
        errors.add("action.status", f"must be one of {', '.join(map(str, STATUSES))}.")
    if "delayMs" in action and (not _is_int(delay) or not 0 <= delay <= MAX_DELAY_MS):
        errors.add("action.delayMs", f"must be an integer from 0 to {MAX_DELAY_MS}.")
    if "drop" in action and drop is not True:
        errors.add("action.drop", "must be true (or left out).")
    retry: Any = action.get("retryAfter")
    if "retryAfter" in action and (not _is_int(retry) or not 0 <= retry <= MAX_RETRY_AFTER):
        errors.add("action.retryAfter", f"must be whole seconds from 0 to {MAX_RETRY_AFTER}.")
    detail = action.get("detail")
    if "detail" in action and (not isinstance(detail, str) or len(detail) > MAX_DETAIL):
        errors.add("action.detail", f"must be a string of at most {MAX_DETAIL} characters.")
    if ("retryAfter" in action or "detail" in action) and "status" not in action:
        errors.add("action", "`retryAfter` and `detail` go with a `status`.")
    if "drop" in action and "status" in action:
        errors.add("action", "a dropped connection has no status: give `drop` or `status`.")
    if not ({"status", "delayMs", "drop"} & action.keys()):
        errors.add("action", "needs `status`, `delayMs` or `drop`.")
    return dict(action)


def parse_rule(body: Any) -> Rule:
    """A rule from the decoded JSON body, or InvalidRequest naming every bad field."""
    errors = _Errors()
    top = _object(body, "", _RULE_KEYS, errors)
    match = _check_match(_object(top.get("match", {}), "match", _MATCH_KEYS, errors), errors)
    if "action" not in top and isinstance(body, dict):
        errors.add("action", "is required.")
    action = _check_action(_object(top.get("action", {}), "action", _ACTION_KEYS, errors), errors)
    times, probability = top.get("times"), top.get("probability")
    if times is not None and (not _is_int(times) or not 1 <= times <= INT64_MAX):
        errors.add("times", "must be an integer of at least 1 (or left out: no limit).")
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
    return Rule(match, action, times, None if probability is None else float(probability))


def rule_from_store(rule_id: int, stored: str, remaining: int | None) -> Rule:
    body = msgspec.json.decode(stored)
    return Rule(
        body["match"], body["action"], body["times"], body["probability"], rule_id, remaining
    )


@dataclass(frozen=True, slots=True)
class Facts:
    """What a rule can match on, for one request. `account_id` is looked up only if a rule
    asks for it (it costs a query for source and channel tokens)."""

    method: str
    path: str
    token_type: str
    token_id: int
    fulfillment_request_id: int | None


def matches(match: dict[str, Any], facts: Facts, account_id: int | None) -> bool:
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
    return "accountId" not in match or match["accountId"] == account_id


def _path_matches(pattern: str, path: str) -> bool:
    if pattern.endswith("*"):
        return path.startswith(pattern[:-1])
    return path == pattern
