"""The seven scenarios of SPEC §11: what each sets up on its fresh tenant, and how it is judged.

Faults are fixed per FR (`match.fulfillmentRequestId`, `times: 1`) rather than drawn by
probability, so every run of a scenario tests what it names: the verdict never depends on luck.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from frsync.certify import checks
from frsync.certify.checks import Check
from frsync.certify.journal import Request

# At any rate of 1/s or more the sandbox's 429 says `Retry-After: 1`; at slower rates it may
# say more, and the judge still uses 1 s (the verdict errs on the connector's side).
RETRY_AFTER_S = 1.0
RATE_LIMIT_MARGIN = 60  # FRs beyond one burst, so the rate-limit scenario outruns the bucket
TRANSIENT_FAILURES: list[dict[str, Any]] = [
    {"status": 500},
    {"status": 502},
    {"status": 503, "retryAfter": 1},
    {"status": 504},
    {"drop": True},
    {"status": 500},
]
SLOW_DELAYS_MS = [2000, 3000, 4000, 5000]
BAD_DATA_EVERY = 3  # every third FR's PATCH is refused
REVOKE_AFTER = 5


@dataclass(frozen=True)
class Limits:
    """The sandbox's per-token bucket, read from its `X-Auth-*` headers."""

    burst: int
    rate: float


@dataclass
class Observed:
    """What a scenario's run(s) left behind: all the judge looks at."""

    requests: list[Request]  # the connector's (its token's), oldest first
    state: list[dict[str, Any]]  # the tenant's FRs afterwards, as the API shows them
    fr_ids: list[int]
    exit_codes: list[int | None]
    timed_out: bool
    timeout_s: float
    limits: Limits
    history_before: dict[int, list[dict[str, Any]]] = field(default_factory=dict)  # run 2's eve
    history: dict[int, list[dict[str, Any]]] = field(default_factory=dict)  # after the last run


@dataclass(frozen=True)
class Scenario:
    name: str
    does: str  # what the sandbox does, as the table says it
    passes_when: str
    fr_count: Callable[[Limits], int]
    faults: Callable[[list[int]], list[dict[str, Any]]]
    judge: Callable[[Observed], list[Check]]
    runs: int = 1
    waits_s: float = 2.0  # what its faults add to a good connector's time, for the ETA

    def estimate_s(self, limits: Limits) -> float:
        """About how long a well-behaved connector takes: the requests beyond a burst at the
        refill rate, plus the waits its faults impose."""
        sent = self.runs * (self.fr_count(limits) + 1)
        return max(0, sent - limits.burst) / limits.rate + self.waits_s


def _none(_: list[int]) -> list[dict[str, Any]]:
    return []


def _ten(_: Limits) -> int:
    return 10


def _rate_limit_count(limits: Limits) -> int:
    return max(200, limits.burst + RATE_LIMIT_MARGIN)


def _patch_of(fr_id: int) -> dict[str, Any]:
    return {"method": "PATCH", "fulfillmentRequestId": fr_id}


def _transient_faults(fr_ids: list[int]) -> list[dict[str, Any]]:
    pairs = zip(fr_ids, TRANSIENT_FAILURES, strict=False)
    return [{"match": _patch_of(fr), "action": action, "times": 1} for fr, action in pairs]


def _slow_faults(fr_ids: list[int]) -> list[dict[str, Any]]:
    listing = {"match": {"method": "GET", "path": "/fulfillment-requests"}, "times": 1}
    rules = [{**listing, "action": {"delayMs": SLOW_DELAYS_MS[0]}}]
    slow = zip(fr_ids[1::2], SLOW_DELAYS_MS, strict=False)  # every request about these FRs
    rules += [{"match": {"fulfillmentRequestId": fr}, "action": {"delayMs": ms}} for fr, ms in slow]
    return rules


def refused_frs(fr_ids: list[int]) -> list[int]:
    return fr_ids[BAD_DATA_EVERY - 1 :: BAD_DATA_EVERY]


def _bad_data_faults(fr_ids: list[int]) -> list[dict[str, Any]]:
    detail = "certify bad-data: the sandbox refuses this FR's accounting sync"
    action = {"status": 400, "detail": detail}
    return [{"match": _patch_of(fr), "action": action} for fr in refused_frs(fr_ids)]


def _revoke_faults(_: list[int]) -> list[dict[str, Any]]:
    action = {"status": 401, "revokeToken": True}
    return [{"match": {"method": "PATCH"}, "skip": REVOKE_AFTER, "times": 1, "action": action}]


def _baseline(o: Observed) -> list[Check]:
    return [
        checks.every_fr_recorded(o.state, o.fr_ids, o.requests),
        checks.no_429(o.requests),
        checks.exit_code(o.exit_codes[0], zero=True),
    ]


def _rate_limit(o: Observed) -> list[Check]:
    return [checks.retry_after_respected(o.requests, RETRY_AFTER_S)]


def _transient(o: Observed) -> list[Check]:
    return [
        checks.every_fr_recorded(o.state, o.fr_ids, o.requests),
        checks.retry_gap(o.requests),
        checks.attempts_per_fr(o.requests),
    ]


def _slow(o: Observed) -> list[Check]:
    return [checks.every_fr_recorded(o.state, o.fr_ids, o.requests), checks.in_flight(o.requests)]


def _bad_data(o: Observed) -> list[Check]:
    refused = set(refused_frs(o.fr_ids))
    others = [fr for fr in o.fr_ids if fr not in refused]
    return [
        checks.every_fr_recorded(o.state, others, o.requests),
        checks.refused_bodies(o.requests),
    ]


def _revoked(o: Observed) -> list[Check]:
    return [checks.after_first_401(o.requests), checks.exit_code(o.exit_codes[0], zero=False)]


def _idempotence(o: Observed) -> list[Check]:
    return [checks.no_change(o.history_before, o.history)]


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "baseline",
            "nothing unusual; 10 FRs",
            "every FR recorded; 0 × 429; the command exits 0",
            _ten,
            _none,
            _baseline,
        ),
        Scenario(
            "rate-limit",
            f"max(200, burst + {RATE_LIMIT_MARGIN}) FRs: more than a burst",
            "0 × 429, or every request after a 429 came no earlier than its Retry-After",
            _rate_limit_count,
            _none,
            _rate_limit,
        ),
        Scenario(
            "transient-errors",
            "10 FRs; the first PATCH of 6 fails: 500, 502, 503 (Retry-After 1), 504, a drop, 500",
            "every FR recorded; no retry within 100 ms of its failure; ≤ 10 attempts per FR",
            _ten,
            _transient_faults,
            _transient,
            waits_s=8.0,
        ),
        Scenario(
            "slow-api",
            "10 FRs; the listing and every request on 4 FRs delayed 2–5 s",
            "every FR recorded; never more than 8 requests in flight",
            _ten,
            _slow_faults,
            _slow,
            waits_s=18.0,
        ),
        Scenario(
            "bad-data",
            "10 FRs; every PATCH of 3 of them answered 400",
            "every other FR recorded; no identical refused body sent more than twice",
            _ten,
            _bad_data_faults,
            _bad_data,
        ),
        Scenario(
            "revoked-token",
            f"20 FRs; the token is revoked at the PATCH after the {REVOKE_AFTER}th: "
            "every later request gets 401",
            "at most 5 requests after the first 401; the command exits non-zero",
            lambda _: 20,
            _revoke_faults,
            _revoked,
        ),
        Scenario(
            "idempotence",
            "10 FRs; the command runs twice on the same tenant",
            "the second run changes nothing (no history entry with a change)",
            _ten,
            _none,
            _idempotence,
            runs=2,
            waits_s=4.0,
        ),
    )
}


def judge(scenario: Scenario, observed: Observed) -> list[Check]:
    """Every check of the scenario, the time limit's first."""
    return [checks.finished(observed.timed_out, observed.timeout_s), *scenario.judge(observed)]
