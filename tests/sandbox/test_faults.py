"""Fault rules through the real HTTP stack: each action, matching, counting, and that a forced
answer neither applies the request nor spends the bucket."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from tests.sandbox.conftest import Connect
from tests.sandbox.helpers import PATCH_221, SYNCED, add_rule, problem
from tests.support import TOKENS


async def _fr(client: httpx.AsyncClient, fr_id: int = 221) -> dict[str, object]:
    response = await client.get(f"/fulfillment-requests/{fr_id}")
    assert response.status_code == 200
    body: dict[str, object] = response.json()
    return body


@pytest.mark.parametrize("status", [400, 401, 404, 409, 429, 500, 502, 503, 504])
async def test_status_rule_answers_it_without_applying_or_spending_the_bucket(
    admin: httpx.AsyncClient, connect: Connect, status: int
) -> None:
    await add_rule(admin, match={"method": "PATCH"}, action={"status": status}, times=1)
    async with connect(TOKENS["account1"]) as api:
        body = problem(await api.patch(PATCH_221, json=SYNCED), status)
        assert "x-auth-pool-used" not in body  # the answer is the rule's, not the limiter's
        fr = await _fr(api)
        assert fr["accountingSynced"] is None  # not applied
        # One GET spent one token: the forced answer spent none.
        response = await api.get("/fulfillment-requests/221")
        assert response.headers["x-auth-pool-used"] == "2"
        assert (await api.patch(PATCH_221, json=SYNCED)).status_code == 204  # times: 1 used up
    assert body["detail"] and body["type"].startswith("urn:frsync:problem:")


@pytest.mark.parametrize("status", [429, 503])
async def test_429_and_503_always_carry_retry_after(
    admin: httpx.AsyncClient, connect: Connect, status: int
) -> None:
    await add_rule(admin, action={"status": status}, times=1)
    await add_rule(admin, action={"status": status, "retryAfter": 7, "detail": "Busy."}, times=1)
    async with connect(TOKENS["account1"]) as api:
        first = await api.patch(PATCH_221, json=SYNCED)
        second = await api.patch(PATCH_221, json=SYNCED)
    assert first.headers["retry-after"] == "1"
    assert second.headers["retry-after"] == "7" and second.json()["detail"] == "Busy."


async def test_times_counts_firings_then_the_rule_expires(
    admin: httpx.AsyncClient, connect: Connect
) -> None:
    await add_rule(admin, action={"status": 500}, times=2)
    async with connect(TOKENS["account1"]) as api:
        statuses = [(await api.get("/fulfillment-requests/221")).status_code for _ in range(4)]
    assert statuses == [500, 500, 200, 200]
    assert (await admin.get("/__admin/faults")).json() == []


async def test_remaining_counts_down_in_the_listing(
    admin: httpx.AsyncClient, connect: Connect
) -> None:
    await add_rule(admin, action={"status": 500}, times=3)
    async with connect(TOKENS["account1"]) as api:
        await api.get("/fulfillment-requests/221")
    [rule] = (await admin.get("/__admin/faults")).json()
    assert rule["remaining"] == 2


@pytest.mark.parametrize(("probability", "expected"), [(0, 200), (1, 503), (1.0, 503)])
async def test_probability_zero_never_fires_and_one_always_does(
    admin: httpx.AsyncClient, connect: Connect, probability: float, expected: int
) -> None:
    await add_rule(admin, action={"status": 503}, probability=probability, times=5)
    async with connect(TOKENS["account1"]) as api:
        statuses = {(await api.get("/fulfillment-requests/221")).status_code for _ in range(5)}
    assert statuses == {expected}
    # A failed roll is "not matching": it uses none of the rule's firings.
    [rule] = (await admin.get("/__admin/faults")).json() or [{"remaining": 0}]
    assert rule["remaining"] == (5 if expected == 200 else 0)


async def test_half_probability_fires_on_some_requests_only(
    admin: httpx.AsyncClient, connect: Connect
) -> None:
    await add_rule(admin, action={"status": 503}, probability=0.5)
    async with connect(TOKENS["account1"]) as api:
        statuses = [(await api.get("/fulfillment-requests/221")).status_code for _ in range(30)]
    assert 200 in statuses and 503 in statuses  # (1/2)^30 to fail by chance


MATCHES = {
    "method": ({"method": "GET"}, "GET"),
    "exact path": ({"path": "/fulfillment-requests/221"}, "GET"),
    "path prefix": ({"path": "/fulfillment-requests/22*"}, "GET"),
    "token type": ({"tokenType": "account"}, "GET"),
    "account": ({"accountId": 1}, "GET"),
    "fr id": ({"fulfillmentRequestId": 221}, "GET"),
    "all together": ({"method": "GET", "tokenType": "account", "accountId": 1,
                      "fulfillmentRequestId": 221, "path": "/fulfillment-requests/*"}, "GET"),
}  # fmt: skip
MISSES = {
    "method": {"method": "PATCH"},
    "exact path": {"path": "/fulfillment-requests/22"},
    "path prefix": {"path": "/fulfillment-requests/3*"},
    "token type": {"tokenType": "source"},
    "token id": {"tokenId": 999},
    "account": {"accountId": 2},
    "fr id": {"fulfillmentRequestId": 222},
}


@pytest.mark.parametrize(("match", "method"), MATCHES.values(), ids=MATCHES.keys())
async def test_rule_fires_when_every_match_key_holds(
    admin: httpx.AsyncClient, connect: Connect, match: dict[str, object], method: str
) -> None:
    await add_rule(admin, match=match, action={"status": 409})
    async with connect(TOKENS["account1"]) as api:
        assert (await api.get("/fulfillment-requests/221")).status_code == 409


@pytest.mark.parametrize("match", MISSES.values(), ids=MISSES.keys())
async def test_rule_does_not_fire_when_a_match_key_fails(
    admin: httpx.AsyncClient, connect: Connect, match: dict[str, object]
) -> None:
    await add_rule(admin, match=match, action={"status": 409})
    async with connect(TOKENS["account1"]) as api:
        assert (await api.get("/fulfillment-requests/221")).status_code == 200


async def test_token_id_and_source_token_account_match(
    admin: httpx.AsyncClient, connect: Connect
) -> None:
    async with connect(TOKENS["source10"]) as api:
        await api.get("/fulfillment-requests/221")
    [entry] = (await admin.get("/__admin/requests")).json()
    await add_rule(
        admin, match={"tokenId": entry["tokenId"], "accountId": 1}, action={"status": 502}
    )
    async with connect(TOKENS["source10"]) as api:
        assert (await api.get("/fulfillment-requests/221")).status_code == 502
    async with connect(TOKENS["account1"]) as other:
        assert (await other.get("/fulfillment-requests/221")).status_code == 200


async def test_first_matching_rule_in_creation_order_fires(
    admin: httpx.AsyncClient, connect: Connect
) -> None:
    await add_rule(admin, match={"method": "PATCH"}, action={"status": 502})
    await add_rule(admin, action={"status": 504})
    await add_rule(admin, match={"method": "GET"}, action={"status": 500})
    async with connect(TOKENS["account1"]) as api:
        assert (await api.patch(PATCH_221, json=SYNCED)).status_code == 502
        assert (await api.get("/fulfillment-requests/221")).status_code == 504


async def test_delete_one_rule_then_all(admin: httpx.AsyncClient, connect: Connect) -> None:
    first = await add_rule(admin, action={"status": 502})
    await add_rule(admin, action={"status": 504})
    assert (await admin.delete(f"/__admin/faults/{first['id']}")).status_code == 204
    async with connect(TOKENS["account1"]) as api:
        assert (await api.get("/fulfillment-requests/221")).status_code == 504
        assert (await admin.delete("/__admin/faults")).status_code == 204
        assert (await api.get("/fulfillment-requests/221")).status_code == 200
    assert (await admin.get("/__admin/faults")).json() == []


async def test_rules_do_not_touch_unauthenticated_requests(
    admin: httpx.AsyncClient, connect: Connect
) -> None:
    await add_rule(admin, action={"status": 503})
    async with connect("not-a-valid-token-at-all") as stranger:
        problem(await stranger.get("/fulfillment-requests/221"), 401)


async def test_delay_rule_delays_then_runs_the_request_normally(
    admin: httpx.AsyncClient, connect: Connect
) -> None:
    await add_rule(admin, match={"fulfillmentRequestId": 221}, action={"delayMs": 300})
    async with connect(TOKENS["account1"]) as api:
        started = time.perf_counter()
        assert (await api.patch(PATCH_221, json=SYNCED)).status_code == 204
        took = time.perf_counter() - started
        assert (await _fr(api))["accountingSynced"] is True
    assert took >= 0.3


async def test_delay_does_not_hold_up_other_requests(
    admin: httpx.AsyncClient, connect: Connect
) -> None:
    await add_rule(admin, match={"fulfillmentRequestId": 221}, action={"delayMs": 1500})
    async with connect(TOKENS["account1"]) as api:
        slow = asyncio.create_task(api.get("/fulfillment-requests/221"))
        await asyncio.sleep(0.1)
        started = time.perf_counter()
        fast = await api.get("/fulfillment-requests/222")
        fast_took = time.perf_counter() - started
        assert not slow.done()
        assert (await slow).status_code == 200
    assert fast.status_code == 200 and fast_took < 1.0


async def test_delay_then_status_delays_and_answers_the_status(
    admin: httpx.AsyncClient, connect: Connect
) -> None:
    await add_rule(admin, action={"delayMs": 200, "status": 503})
    async with connect(TOKENS["account1"]) as api:
        started = time.perf_counter()
        response = await api.patch(PATCH_221, json=SYNCED)
        took = time.perf_counter() - started
        assert (await admin.delete("/__admin/faults")).status_code == 204
        assert (await _fr(api))["accountingSynced"] is None
    problem(response, 503)
    assert took >= 0.2
