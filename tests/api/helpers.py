"""Small helpers for API tests: the state of an FR as the API shows it, and problem checks."""

from __future__ import annotations

from typing import Any

import httpx

SYNC = "/fulfillment-requests/{}/accounting-sync"


async def state_of(api: httpx.AsyncClient, fr_id: int) -> dict[str, Any]:
    """The FR and its history, to compare before and after a request."""
    fr = await api.get(f"/fulfillment-requests/{fr_id}")
    history = await api.get(f"/fulfillment-requests/{fr_id}/accounting-sync/history")
    assert fr.status_code == 200 and history.status_code == 200
    return {"fr": fr.json(), "history": history.json()}


def assert_problem(answer: httpx.Response, status: int, field: str | None = None) -> dict[str, Any]:
    """The one error shape; `field` must be among the named fields of a 400."""
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = answer.json()
    assert body["status"] == status
    assert body["message"] == body["detail"]
    assert body["type"].startswith("urn:frsync:problem:")
    if field is not None:
        assert field in [e["field"] for e in body["errors"]], body
    return body
