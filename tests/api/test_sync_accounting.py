"""PATCH /fulfillment-requests/{id}/accounting-sync: merge-patch semantics, history, replay."""

from __future__ import annotations

import httpx
import pytest

from tests.api.helpers import SYNC, assert_problem, state_of

SUCCESS_1 = {
    "accountingSynced": True,
    "externalAccountingId": "TEST-221",
    "accountingError": None,
    "items": [{"id": 12312, "externalAccountingItemId": "TEST-221-A"}],
}
ERROR_1 = {"accountingSynced": False, "accountingError": "Request rejected due to invalid Id"}


async def test_reference_success_example_records_the_sync(api: httpx.AsyncClient) -> None:
    answer = await api.patch(SYNC.format(221), json=SUCCESS_1)
    assert answer.status_code == 204
    assert answer.content == b""
    fr = (await api.get("/fulfillment-requests/221")).json()
    assert fr["accountingSynced"] is True
    assert fr["externalAccountingId"] == "TEST-221"
    assert fr["accountingError"] is None
    assert fr["accountingSyncedAt"] is not None
    items = {i["id"]: i["externalAccountingItemId"] for i in fr["fulfillmentRequestItems"]}
    assert items == {12312: "TEST-221-A", 12313: None}


async def test_reference_error_example_records_the_error(api: httpx.AsyncClient) -> None:
    assert (await api.patch(SYNC.format(221), json=SUCCESS_1)).status_code == 204
    assert (await api.patch(SYNC.format(221), json=ERROR_1)).status_code == 204
    fr = (await api.get("/fulfillment-requests/221")).json()
    assert fr["accountingSynced"] is False
    assert fr["accountingError"] == "Request rejected due to invalid Id"
    assert fr["externalAccountingId"] == "TEST-221"  # omitted: unchanged
    assert fr["accountingSyncedAt"] is None  # cleared when synced becomes false


async def test_a_patch_that_changes_nothing_writes_no_history(api: httpx.AsyncClient) -> None:
    """SPEC §2 (issue 19): `{}`, or values equal to the current ones, is a 204 that appends
    no history entry, on every store (the PostgreSQL function included)."""
    assert (await api.patch(SYNC.format(222), json=SUCCESS_1 | {"items": None})).status_code == 204
    before = await state_of(api, 222)
    for body in ({}, {"accountingSynced": True, "externalAccountingId": "TEST-221"}):
        assert (await api.patch(SYNC.format(222), json=body)).status_code == 204
    after = await state_of(api, 222)
    assert after == before
    assert len(after["history"]) == 1  # the first PATCH's entry only


async def test_omitted_fields_stay_and_null_clears(api: httpx.AsyncClient) -> None:
    await api.patch(SYNC.format(221), json=SUCCESS_1)
    await api.patch(SYNC.format(221), json={"accountingError": "transient"})
    fr = (await api.get("/fulfillment-requests/221")).json()
    assert fr["externalAccountingId"] == "TEST-221"
    assert fr["accountingError"] == "transient"
    assert fr["accountingSynced"] is True

    await api.patch(SYNC.format(221), json={"externalAccountingId": None, "accountingSynced": None})
    fr = (await api.get("/fulfillment-requests/221")).json()
    assert fr["externalAccountingId"] is None
    assert fr["accountingSynced"] is None
    assert fr["accountingSyncedAt"] is None
    assert fr["accountingError"] == "transient"


async def test_items_null_is_like_omitting_and_unlisted_items_keep_values(
    api: httpx.AsyncClient,
) -> None:
    body = {
        "items": [
            {"id": 12312, "externalAccountingItemId": "A"},
            {"id": 12313, "externalAccountingItemId": "B"},
        ]
    }
    await api.patch(SYNC.format(221), json=body)
    await api.patch(SYNC.format(221), json={"items": None})
    await api.patch(
        SYNC.format(221), json={"items": [{"id": 12313, "externalAccountingItemId": None}]}
    )
    await api.patch(SYNC.format(221), json={"items": [{"id": 12312}]})  # id only: unchanged
    fr = (await api.get("/fulfillment-requests/221")).json()
    items = {i["id"]: i["externalAccountingItemId"] for i in fr["fulfillmentRequestItems"]}
    assert items == {12312: "A", 12313: None}


async def test_resending_true_keeps_the_first_synced_time(api: httpx.AsyncClient) -> None:
    await api.patch(SYNC.format(221), json={"accountingSynced": True})
    first = (await api.get("/fulfillment-requests/221")).json()["accountingSyncedAt"]
    await api.patch(SYNC.format(221), json={"accountingSynced": True, "externalAccountingId": "X"})
    again = (await api.get("/fulfillment-requests/221")).json()
    assert again["accountingSyncedAt"] == first
    assert again["externalAccountingId"] == "X"


async def test_replaying_a_body_yields_the_same_state(api: httpx.AsyncClient) -> None:
    await api.patch(SYNC.format(221), json=SUCCESS_1)
    once = (await state_of(api, 221))["fr"]
    for _ in range(3):
        assert (await api.patch(SYNC.format(221), json=SUCCESS_1)).status_code == 204
    assert (await state_of(api, 221))["fr"] == once


async def test_updated_at_moves_only_when_something_changes(api: httpx.AsyncClient) -> None:
    before = (await api.get("/fulfillment-requests/222")).json()
    await api.patch(SYNC.format(222), json={"accountingSynced": None})  # already null
    assert (await api.get("/fulfillment-requests/222")).json()["updatedAt"] == before["updatedAt"]
    await api.patch(SYNC.format(222), json={"accountingSynced": False})
    assert (await api.get("/fulfillment-requests/222")).json()["updatedAt"] != before["updatedAt"]


async def test_history_records_who_and_what_changed_newest_first(
    app, api: httpx.AsyncClient
) -> None:
    from tests.conftest import client_for
    from tests.support import TOKENS

    await api.patch(SYNC.format(221), json=SUCCESS_1)
    async with client_for(app, TOKENS["source10"]) as source:
        await source.patch(SYNC.format(221), json=ERROR_1)
    history = (await api.get("/fulfillment-requests/221/accounting-sync/history")).json()
    assert len(history) == 2
    newest, oldest = history
    assert newest["tokenType"] == "source"
    assert oldest["tokenType"] == "account"
    assert newest["tokenId"] != oldest["tokenId"]
    assert oldest["changes"] == {
        "accountingSynced": {"before": None, "after": True},
        "externalAccountingId": {"before": None, "after": "TEST-221"},
        "items": [
            {"id": 12312, "externalAccountingItemId": {"before": None, "after": "TEST-221-A"}}
        ],
    }
    assert newest["changes"] == {
        "accountingSynced": {"before": True, "after": False},
        "accountingError": {"before": None, "after": "Request rejected due to invalid Id"},
    }
    for entry in history:
        assert len(entry["requestId"]) >= 8
        assert "tok-" not in str(entry)  # never the token itself


async def test_history_request_id_matches_the_answer_header(api: httpx.AsyncClient) -> None:
    answer = await api.patch(SYNC.format(223), json={"accountingSynced": True})
    history = (await api.get("/fulfillment-requests/223/accounting-sync/history")).json()
    assert history[0]["requestId"] == answer.headers["x-request-id"]


@pytest.mark.parametrize(
    ("field", "limit"),
    [("externalAccountingId", 255), ("accountingError", 4000)],
)
async def test_string_limits_accept_max_and_refuse_max_plus_one(
    api: httpx.AsyncClient, field: str, limit: int
) -> None:
    assert (await api.patch(SYNC.format(221), json={field: "x" * limit})).status_code == 204
    before = await state_of(api, 221)
    answer = await api.patch(SYNC.format(221), json={field: "y" * (limit + 1)})
    assert_problem(answer, 400, field)
    assert await state_of(api, 221) == before


async def test_item_external_id_limit(api: httpx.AsyncClient) -> None:
    ok = {"items": [{"id": 12312, "externalAccountingItemId": "é" * 255}]}
    assert (await api.patch(SYNC.format(221), json=ok)).status_code == 204
    bad = {"items": [{"id": 12312, "externalAccountingItemId": "é" * 256}]}
    assert_problem(
        await api.patch(SYNC.format(221), json=bad), 400, "items[0].externalAccountingItemId"
    )


async def test_items_limit_of_one_thousand_entries(api: httpx.AsyncClient) -> None:
    at_limit = {"items": [{"id": 12312}] * 1000}
    answer = await api.patch(SYNC.format(221), json=at_limit)
    body = assert_problem(answer, 400)  # the schema allows 1000; the repeats are refused
    assert "12312" in body["detail"]
    assert_problem(
        await api.patch(SYNC.format(221), json={"items": [{"id": 12312}] * 1001}), 400, "items"
    )


async def test_unicode_round_trips_exactly(api: httpx.AsyncClient) -> None:
    text = 'Zoë\'s 🧾 — 请求 \u2028 "quoted" \\ back'
    assert (await api.patch(SYNC.format(221), json={"accountingError": text})).status_code == 204
    assert (await api.get("/fulfillment-requests/221")).json()["accountingError"] == text
