"""Object-level authorization: every token type against FRs in and out of its scope, in the
path and in `items`. Out of scope is answered exactly like a missing FR, and changes nothing."""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette

from tests.api.helpers import SYNC, assert_problem
from tests.conftest import client_for
from tests.support import BASIC_FIXTURE, TOKENS

FRS = {fr["id"]: fr for fr in BASIC_FIXTURE["fulfillmentRequests"]}
OWNER_FIELD = {"account": "accountId", "source": "sourceId", "channel": "channelId"}


def in_scope(token_name: str, fr_id: int) -> bool:
    kind = token_name.rstrip("0123456789")
    return FRS[fr_id][OWNER_FIELD[kind]] == int(token_name[len(kind) :])


MATRIX = [(token, fr_id) for token in TOKENS for fr_id in FRS]


def _normalised(answer: httpx.Response) -> tuple[int, dict, dict]:
    body = answer.json()
    body.pop("requestId", None)
    headers = {
        k: v
        for k, v in answer.headers.items()
        if k not in ("x-request-id", "x-auth-pool-used", "date")
    }
    return answer.status_code, body, headers


@pytest.mark.parametrize(("token", "fr_id"), MATRIX)
async def test_scope_matrix_for_get_patch_and_history(
    app: Starlette, token: str, fr_id: int
) -> None:
    async with client_for(app, TOKENS[token]) as client:
        get = await client.get(f"/fulfillment-requests/{fr_id}")
        history = await client.get(f"/fulfillment-requests/{fr_id}/accounting-sync/history")
        patch = await client.patch(SYNC.format(fr_id), json={"externalAccountingId": f"by-{token}"})
        missing = await client.get("/fulfillment-requests/999999")
    async with client_for(
        app, TOKENS["account1" if FRS[fr_id]["accountId"] == 1 else "account2"]
    ) as owner:
        now = (await owner.get(f"/fulfillment-requests/{fr_id}")).json()
    if in_scope(token, fr_id):
        assert get.status_code == 200 and get.json()["id"] == fr_id
        assert history.status_code == 200
        assert patch.status_code == 204
        assert now["externalAccountingId"] == f"by-{token}"
    else:
        for answer in (get, history, patch):
            assert_problem(answer, 404)
            assert _normalised(answer) == _normalised(missing)
        assert now["externalAccountingId"] == FRS[fr_id].get("externalAccountingId")


@pytest.mark.parametrize("token", ["account2", "source11", "channel40"])
async def test_foreign_item_ids_in_an_in_scope_request_are_rejected(
    app: Starlette, token: str
) -> None:
    own = {"account2": 301, "source11": 222, "channel40": 301}[token]
    async with client_for(app, TOKENS[token]) as client:
        answer = await client.patch(
            SYNC.format(own), json={"items": [{"id": 12312, "externalAccountingItemId": "x"}]}
        )
    assert_problem(answer, 400, "items[0].id")
    async with client_for(app, TOKENS["account1"]) as owner:
        fr = (await owner.get("/fulfillment-requests/221")).json()
    assert fr["fulfillmentRequestItems"][0]["externalAccountingItemId"] is None


async def test_list_never_shows_another_scope(app: Starlette) -> None:
    for token in TOKENS:
        async with client_for(app, TOKENS[token]) as client:
            listed = (
                await client.get("/fulfillment-requests", params={"filterPageSize": "500"})
            ).json()
            count = (await client.get("/fulfillment-requests/count")).json()["count"]
        expected = sorted(fr_id for fr_id in FRS if in_scope(token, fr_id))
        assert [fr["id"] for fr in listed] == expected
        assert count == len(expected)
