"""The judge on synthetic journals: each SPEC §11 pass condition at its edges."""

from __future__ import annotations

import itertools
from typing import Any

from frsync.certify import checks
from frsync.certify.journal import Request, from_entries, parse_time
from frsync.certify.scenarios import SCENARIOS, Limits, Observed, judge

_ids = itertools.count(1)


def req(
    arrival_ms: float,
    status: int | None = 204,
    *,
    fr: int | None = 1,
    duration_ms: float = 10.0,
    body: str | None = '{"accountingSynced":true}',
    method: str = "PATCH",
) -> Request:
    path = f"/fulfillment-requests/{fr}/accounting-sync" if fr else "/fulfillment-requests"
    return Request(next(_ids), arrival_ms + duration_ms, duration_ms, method, path, status, body)


def recorded(fr_id: int) -> dict[str, Any]:
    return {
        "id": fr_id,
        "accountingSynced": True,
        "externalAccountingId": f"B-{fr_id}",
        "accountingError": None,
        "fulfillmentRequestItems": [{"id": 1, "externalAccountingItemId": "L-1"}],
    }


def test_a_journal_entry_is_read_as_arrival_and_answer() -> None:
    entry = {
        "id": 7,
        "at": "2026-11-26T16:52:42.123Z",
        "durationMs": 23.0,
        "method": "PATCH",
        "path": "/fulfillment-requests/42/accounting-sync",
        "status": None,
        "body": {"b": 1, "a": None},
    }
    (request,) = from_entries([entry])
    assert request.at_ms == parse_time("2026-11-26T16:52:42.123Z")
    assert request.arrival_ms == request.at_ms - 23.0
    assert request.fr_id == 42 and request.failed
    assert request.body == '{"a":null,"b":1}'  # canonical: identical bodies compare equal


def test_recorded_means_synced_with_every_id_or_an_error() -> None:
    fr = recorded(1)
    assert checks.is_recorded(fr)
    assert not checks.is_recorded({**fr, "externalAccountingId": None})
    missing_item = {**fr, "fulfillmentRequestItems": [{"id": 1, "externalAccountingItemId": None}]}
    assert not checks.is_recorded(missing_item)
    assert checks.is_recorded({"id": 2, "accountingSynced": False, "accountingError": "no vendor"})
    check = checks.every_fr_recorded([fr, {"id": 2}], [1, 2, 3])
    assert not check.passed and check.figures["notRecorded"] == [2, 3]


def test_a_retry_at_99_ms_fails_and_at_100_ms_passes() -> None:
    failure = req(0, 503, duration_ms=10)  # answered at 10 ms
    too_soon = checks.retry_gap([failure, req(109)])
    assert not too_soon.passed and too_soon.offender is not None
    assert too_soon.figures["shortestGapMs"] == 99
    assert checks.retry_gap([failure, req(110)]).passed


def test_a_dropped_connection_counts_as_a_failure_and_success_is_not_retried() -> None:
    assert not checks.retry_gap([req(0, None), req(50)]).passed
    assert checks.retry_gap([req(0, 204), req(20)]).passed  # a resend after a 204 is no retry


def test_ten_attempts_pass_eleven_fail() -> None:
    ten = [req(i * 1000, 500) for i in range(9)] + [req(9000)]
    assert checks.attempts_per_fr(ten).passed
    eleven = [req(i * 1000, 500, fr=5) for i in range(10)] + [req(10000, fr=5)]
    check = checks.attempts_per_fr(eleven)
    assert not check.passed and check.offender is eleven[10]


def test_retry_after_respected_or_not() -> None:
    limited = req(0, 429, duration_ms=2)  # answered at 2 ms, Retry-After 1 s
    assert checks.retry_after_respected([limited, req(1002)], 1.0).passed
    early = req(1001)
    check = checks.retry_after_respected([limited, early], 1.0)
    assert not check.passed and check.offender is early
    assert checks.retry_after_respected([req(0), req(1)], 1.0).figures["429s"] == 0


def test_eight_in_flight_pass_nine_fail() -> None:
    eight = [req(i, fr=i + 1, duration_ms=3000) for i in range(8)] + [req(3100, fr=9)]
    assert checks.in_flight(eight).figures["maxInFlight"] == 8
    assert checks.in_flight(eight).passed
    nine = [req(i, fr=i + 1, duration_ms=3000) for i in range(9)]
    check = checks.in_flight(nine)
    assert not check.passed and check.offender is nine[8]


def test_back_to_back_requests_are_not_in_flight_together() -> None:
    first = req(0, duration_ms=100)
    second = req(100, duration_ms=100)  # arrives the ms the first is answered
    assert checks.in_flight([first, second], maximum=1).passed


def test_an_identical_refused_body_twice_passes_thrice_fails() -> None:
    twice = [req(0, 400, fr=3), req(1000, 400, fr=3)]
    assert checks.refused_bodies(twice).passed
    thrice = [*twice, req(2000, 400, fr=3)]
    check = checks.refused_bodies(thrice)
    assert not check.passed and check.offender is thrice[2]
    changed = [*twice, req(2000, 400, fr=3, body='{"accountingError":"x"}')]
    assert checks.refused_bodies(changed).passed  # a different body is a new attempt


def test_five_requests_after_the_first_401_pass_six_fail() -> None:
    before = [req(i * 10, fr=i + 1) for i in range(5)]
    first_401 = req(60, 401, fr=6)
    five = [*before, first_401, *(req(100 + i, 401, fr=7 + i) for i in range(5))]
    assert checks.after_first_401(five).passed
    six = [*five, req(200, 401, fr=20)]
    check = checks.after_first_401(six)
    assert not check.passed and check.offender is six[-1]
    assert check.figures["afterFirst401"] == 6 and check.figures["first401"] == first_401.id


def test_a_second_run_with_a_change_fails() -> None:
    entry = {"id": 1, "at": "2026-11-26T16:52:42.123Z", "changes": {"accountingSynced": {}}}
    before = {1: [entry]}
    assert checks.no_change(before, {1: [entry]}).passed
    changed = {"id": 2, "at": "2026-11-26T16:53:00.000Z", "changes": {"externalAccountingId": {}}}
    check = checks.no_change(before, {1: [changed, entry]})
    assert not check.passed and check.figures["changedFrs"] == [1]


def test_the_scenario_judge_adds_the_time_limit_and_the_exit_code() -> None:
    observed = Observed(
        requests=[req(0, 200, fr=None, method="GET"), req(100, fr=1)],
        state=[recorded(1)],
        fr_ids=[1],
        exit_codes=[0],
        timed_out=False,
        timeout_s=120,
        limits=Limits(40, 2.0),
    )
    assert all(c.passed for c in judge(SCENARIOS["baseline"], observed))
    hung = Observed(**{**observed.__dict__, "exit_codes": [None], "timed_out": True})
    failed = [c.name for c in judge(SCENARIOS["baseline"], hung) if not c.passed]
    assert failed == ["finished in time", "exits 0"]


def test_rate_limit_takes_more_than_a_burst() -> None:
    assert SCENARIOS["rate-limit"].fr_count(Limits(40, 2.0)) == 200
    assert SCENARIOS["rate-limit"].fr_count(Limits(500, 50.0)) == 560


def test_transient_faults_cover_every_failure_on_at_least_half_the_frs() -> None:
    fr_ids = list(range(100, 110))
    rules = SCENARIOS["transient-errors"].faults(fr_ids)
    assert len({r["match"]["fulfillmentRequestId"] for r in rules}) >= len(fr_ids) / 2
    statuses = {r["action"].get("status", "drop") for r in rules}
    assert statuses == {500, 502, 503, 504, "drop"}
    assert all(r["times"] == 1 and r["match"]["method"] == "PATCH" for r in rules)


def test_an_unrecorded_fr_is_shown_with_its_last_attempt() -> None:
    failed = req(0, 502, fr=4)
    check = checks.every_fr_recorded([recorded(3)], [3, 4], [req(0, fr=3), failed])
    assert not check.passed and check.offender is failed
    assert "FR 4: 1 PATCH(es), the last answered 502" in check.detail
