"""Small helpers shared by the sandbox tests."""

from __future__ import annotations

from typing import Any

import httpx

PATCH_221 = "/fulfillment-requests/221/accounting-sync"
SYNCED = {"accountingSynced": True, "externalAccountingId": "QB-1"}


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


async def add_rule(admin: httpx.AsyncClient, **rule: Any) -> dict[str, Any]:
    response = await admin.post("/__admin/faults", json=rule)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created
