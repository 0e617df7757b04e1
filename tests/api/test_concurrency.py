"""Concurrent writers on one FR: every request lands whole, the last one wins whole."""

from __future__ import annotations

import asyncio

import httpx

from tests.api.helpers import SYNC


def body_for(marker: str) -> dict:
    return {
        "accountingSynced": True,
        "externalAccountingId": f"ext-{marker}",
        "accountingError": f"err-{marker}",
        "items": [
            {"id": 12312, "externalAccountingItemId": f"item-a-{marker}"},
            {"id": 12313, "externalAccountingItemId": f"item-b-{marker}"},
        ],
    }


def marker_of(fr: dict) -> set[str]:
    values = [fr["externalAccountingId"], fr["accountingError"]]
    values += [i["externalAccountingItemId"] for i in fr["fulfillmentRequestItems"]]
    return {v.rsplit("-", 1)[1] for v in values}


async def test_twenty_concurrent_patches_leave_one_writers_version(api: httpx.AsyncClient) -> None:
    answers = await asyncio.gather(
        *(api.patch(SYNC.format(221), json=body_for(str(n))) for n in range(20))
    )
    assert [a.status_code for a in answers] == [204] * 20
    fr = (await api.get("/fulfillment-requests/221")).json()
    assert len(marker_of(fr)) == 1, fr
    history = (await api.get("/fulfillment-requests/221/accounting-sync/history")).json()
    assert len(history) == 20
    # the newest history entry is the version that stands
    (winner,) = marker_of(fr)
    assert history[0]["changes"]["externalAccountingId"]["after"] == f"ext-{winner}"
