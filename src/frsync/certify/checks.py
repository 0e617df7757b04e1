"""The pass conditions of SPEC §11, one function each, over the journal and the final state.

Each check returns a `Check`: passed or not, a one-line detail with the counts, and the first
offending request (journal id and time) when there is one. They are pure: the judge in
`scenarios` combines them, the tests feed them recorded or synthetic journals.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from frsync.certify.journal import Request

MIN_RETRY_GAP_MS = 100.0
MAX_ATTEMPTS_PER_FR = 10
MAX_IN_FLIGHT = 8
MAX_SAME_REFUSED_BODY = 2
MAX_AFTER_FIRST_401 = 5


@dataclass
class Check:
    name: str
    passed: bool
    detail: str
    offender: Request | None = None
    figures: dict[str, Any] = field(default_factory=dict)


def is_recorded(fr: dict[str, Any]) -> bool:
    """Synced with an external id for the FR and each item, or an accounting error."""
    if fr.get("accountingError"):
        return True
    items = fr.get("fulfillmentRequestItems") or []
    return (
        fr.get("accountingSynced") is True
        and bool(fr.get("externalAccountingId"))
        and all(item.get("externalAccountingItemId") for item in items)
    )


def every_fr_recorded(
    state: list[dict[str, Any]], expected: list[int], requests: list[Request] | None = None
) -> Check:
    """Each expected FR recorded; the offender is the last request about the first FR that is
    not (e.g. its failed PATCH, never retried), when `requests` are given."""
    by_id = {fr["id"]: fr for fr in state}
    missing = [fr_id for fr_id in expected if not is_recorded(by_id.get(fr_id, {}))]
    recorded = len(expected) - len(missing)
    detail = f"{recorded}/{len(expected)} FRs recorded"
    if missing:
        shown = ", ".join(str(fr_id) for fr_id in missing[:3])
        detail += f"; not recorded: {shown}" + (" …" if len(missing) > 3 else "")
    figures = {"recorded": recorded, "expected": len(expected), "notRecorded": missing}
    about_first = [r for r in requests or [] if missing and r.fr_id == missing[0]]
    if missing and requests is not None:
        last = about_first[-1] if about_first else None
        detail += f"; FR {missing[0]}: " + (
            f"{len(about_first)} PATCH(es), the last answered {_answer(last)}"
            if last
            else "never PATCHed"
        )
    offender = about_first[-1] if about_first else None
    return Check("every FR recorded", not missing, detail, offender, figures)


def _answer(request: Request) -> str:
    return "by a dropped connection" if request.status is None else str(request.status)


def no_429(requests: list[Request]) -> Check:
    limited = [r for r in requests if r.status == 429]
    first = limited[0] if limited else None
    return Check("0 × 429", not limited, f"{len(limited)} × 429", first, {"429s": len(limited)})


def retry_after_respected(requests: list[Request], retry_after_s: float) -> Check:
    """0 × 429, or no request arrived before the Retry-After of a 429 answered earlier."""
    limited = [r for r in requests if r.status == 429]
    early = [
        r
        for r in requests
        if any(q.at_ms <= r.arrival_ms < q.at_ms + retry_after_s * 1000 for q in limited)
    ]
    detail = f"{len(limited)} × 429; {len(early)} requests sent before their Retry-After"
    figures = {"429s": len(limited), "beforeRetryAfter": len(early), "retryAfterS": retry_after_s}
    return Check("Retry-After respected", not early, detail, early[0] if early else None, figures)


def _patches_by_fr(requests: list[Request]) -> dict[int, list[Request]]:
    by_fr: dict[int, list[Request]] = defaultdict(list)
    for request in requests:
        if request.fr_id is not None:
            by_fr[request.fr_id].append(request)
    return by_fr


def retry_gap(requests: list[Request], minimum_ms: float = MIN_RETRY_GAP_MS) -> Check:
    """No PATCH of an FR arrives within `minimum_ms` of that FR's previous failure."""
    gaps: list[tuple[float, Request]] = []
    for attempts in _patches_by_fr(requests).values():
        for failed, retry in pairwise(attempts):
            if failed.failed:
                gaps.append((retry.arrival_ms - failed.at_ms, retry))
    too_soon = [(gap, r) for gap, r in gaps if gap < minimum_ms]
    shortest = min((gap for gap, _ in gaps), default=None)
    detail = f"{len(gaps)} retries; {len(too_soon)} within {minimum_ms:g} ms of their failure"
    if shortest is not None:
        detail += f" (shortest {shortest:.0f} ms)"
    figures = {"retries": len(gaps), "tooSoon": len(too_soon), "shortestGapMs": shortest}
    offender = too_soon[0][1] if too_soon else None
    return Check(f"retries ≥ {minimum_ms:g} ms apart", not too_soon, detail, offender, figures)


def attempts_per_fr(requests: list[Request], maximum: int = MAX_ATTEMPTS_PER_FR) -> Check:
    by_fr = _patches_by_fr(requests)
    most = max((len(attempts) for attempts in by_fr.values()), default=0)
    over = [attempts[maximum] for attempts in by_fr.values() if len(attempts) > maximum]
    over.sort(key=lambda r: r.id)
    detail = f"at most {most} attempt(s) per FR; {len(over)} FRs over {maximum}"
    figures = {"maxAttempts": most, "frsOverLimit": len(over)}
    return Check(
        f"≤ {maximum} attempts per FR", not over, detail, over[0] if over else None, figures
    )


def in_flight(requests: list[Request], maximum: int = MAX_IN_FLIGHT) -> Check:
    """The most requests the server held at once, from each one's arrival to its answer."""
    events = sorted(
        [(r.arrival_ms, 1, r) for r in requests] + [(r.at_ms, -1, r) for r in requests],
        key=lambda event: (event[0], event[1]),  # an answer before an arrival at the same ms
    )
    current = peak = 0
    offender: Request | None = None
    for _, step, request in events:
        current += step
        peak = max(peak, current)
        if current > maximum and offender is None:
            offender = request
    detail = f"at most {peak} in flight at once (limit {maximum})"
    return Check(
        f"≤ {maximum} in flight", offender is None, detail, offender, {"maxInFlight": peak}
    )


def refused_bodies(requests: list[Request], maximum: int = MAX_SAME_REFUSED_BODY) -> Check:
    """No FR's body that was answered 400 sent more than `maximum` times, identical."""
    sent = Counter((r.fr_id, r.body) for r in requests if r.fr_id is not None)
    refused = {(r.fr_id, r.body) for r in requests if r.fr_id is not None and r.status == 400}
    repeated = {key for key in refused if sent[key] > maximum}
    offenders = [r for r in requests if (r.fr_id, r.body) in repeated]
    seen: Counter[tuple[int | None, str | None]] = Counter()
    first: Request | None = None
    for request in offenders:  # the send that went over the limit
        seen[(request.fr_id, request.body)] += 1
        if seen[(request.fr_id, request.body)] > maximum:
            first = request
            break
    most = max((sent[key] for key in refused), default=0)
    detail = (
        f"{len(refused)} refused bodies, sent at most {most}× each; {len(repeated)} over {maximum}×"
    )
    figures = {"refusedBodies": len(refused), "maxSends": most, "overLimit": len(repeated)}
    return Check(f"a refused body sent ≤ {maximum}×", not repeated, detail, first, figures)


def after_first_401(requests: list[Request], maximum: int = MAX_AFTER_FIRST_401) -> Check:
    first = next((r for r in requests if r.status == 401), None)
    later = [r for r in requests if first is not None and r.id > first.id]
    detail = (
        "no 401 met"
        if first is None
        else f"{len(later)} requests after the first 401 (journal #{first.id})"
    )
    offender = later[maximum] if len(later) > maximum else None
    figures = {"afterFirst401": len(later), "first401": None if first is None else first.id}
    return Check(
        f"≤ {maximum} requests after the first 401", offender is None, detail, offender, figures
    )


def exit_code(code: int | None, *, zero: bool) -> Check:
    wanted = "0" if zero else "non-zero"
    if code is None:
        return Check(f"exits {wanted}", False, "no exit code (killed at the time limit)")
    passed = (code == 0) == zero
    return Check(f"exits {wanted}", passed, f"exited {code}", None, {"exitCode": code})


def finished(timed_out: bool, timeout_s: float) -> Check:
    if timed_out:
        detail = f"still running after {timeout_s:g} s: its process group was killed"
        return Check("finished in time", False, detail)
    return Check("finished in time", True, f"finished within {timeout_s:g} s")


def no_change(
    before: dict[int, list[dict[str, Any]]], after: dict[int, list[dict[str, Any]]]
) -> Check:
    """No history entry with a change appeared between the two snapshots (by entry id)."""
    seen = {entry["id"] for entries in before.values() for entry in entries}
    changed = {
        fr_id: entry
        for fr_id, entries in after.items()
        for entry in entries
        if entry["id"] not in seen and entry.get("changes")
    }
    detail = f"the second run changed {len(changed)} FRs"
    if changed:
        fr_id, entry = next(iter(changed.items()))
        detail += f" (first: FR {fr_id} at {entry.get('at')}, fields {sorted(entry['changes'])})"
    figures = {"changedFrs": sorted(changed)}
    return Check("second run changes nothing", not changed, detail, None, figures)
