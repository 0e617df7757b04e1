"""Family 7 — security misconfiguration (OWASP API8) and inventory (API9).

Every answer, whatever its status, carries `Cache-Control: no-store` and
`X-Content-Type-Options: nosniff` (the recorder checks that on every request of the suite;
here every status the app can give is produced on purpose). Methods a route does not serve
get 405 with `Allow`. An unexpected failure whose message holds SQL, a file path and a token
answers a 500 that holds none of them. `/docs` can be switched off.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette

from frsync.config import Settings
from tests.security.conftest import recording_client
from tests.security.tally import LEAK_PATTERNS, Recorder
from tests.support import TOKENS, running_app

ROUTES = {
    "/fulfillment-requests/221/accounting-sync": {"PATCH"},
    "/fulfillment-requests/221/accounting-sync/history": {"GET", "HEAD"},
    "/fulfillment-requests/count": {"GET", "HEAD"},
    "/fulfillment-requests": {"GET", "HEAD"},
    "/fulfillment-requests/221": {"GET", "HEAD"},
    "/healthz": {"GET", "HEAD"},
    "/readyz": {"GET", "HEAD"},
    "/openapi.json": {"GET", "HEAD"},
}
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT",
           "PROPFIND", "FOO"]  # fmt: skip


async def test_every_status_carries_the_safety_headers(app: Starlette, store_name: str) -> None:
    recorder = Recorder("7 misconfiguration", store_name)
    seen: set[int] = set()
    requests: list[tuple[str, str, dict[str, Any]]] = [
            ("GET", "/fulfillment-requests/221", {}), ("GET", "/healthz", {}),
            ("GET", "/readyz", {}), ("GET", "/openapi.json", {}), ("GET", "/docs", {}),
            ("PATCH", "/fulfillment-requests/221/accounting-sync", {"json": {}}),
            ("GET", "/fulfillment-requests/x", {}), ("GET", "/fulfillment-requests/999", {}),
            ("GET", "/no/such/path", {}), ("DELETE", "/fulfillment-requests/221", {}),
            ("PATCH", "/fulfillment-requests/221/accounting-sync", {"content": b"{}"}),
            ("PATCH", "/fulfillment-requests/221/accounting-sync",
             {"content": b" " * (2 << 20), "headers": {"Content-Type": "application/json"}}),
    ]  # fmt: skip
    async with recording_client(app, recorder, TOKENS["account1"]) as client:
        for method, url, kwargs in requests:
            recorder.case()
            seen.add((await client.request(method, url, **kwargs)).status_code)
    async with recording_client(app, recorder, "tok-nope-000000000000", address="10.7.0.1") as bad:
        for _ in range(25):  # past the invalid-token burst: 401s, then 429s
            recorder.case()
            seen.add((await bad.get("/fulfillment-requests/221")).status_code)
    assert seen == {200, 204, 400, 401, 404, 405, 413, 415, 429}
    recorder.counts.notes.append(f"statuses covered: {sorted(seen)}")
    recorder.assert_clean()


async def test_other_verbs_get_405_with_allow(app: Starlette, store_name: str) -> None:
    recorder = Recorder("7 misconfiguration", store_name)
    async with recording_client(app, recorder, TOKENS["account1"]) as client:
        for path, allowed in ROUTES.items():
            for method in METHODS:
                if method in allowed:
                    continue
                recorder.case()
                answer = await client.request(method, path)
                assert answer.status_code == 405, (method, path, answer.status_code)
                assert set(answer.headers["allow"].replace(" ", "").split(",")) == allowed
    recorder.assert_clean()


async def test_an_unexpected_failure_answers_a_clean_500(
    app: Starlette, store_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = Recorder("7 misconfiguration", store_name)
    secret = TOKENS["account2"]

    async def explode(*args: Any) -> None:
        raise RuntimeError(f"SELECT token FROM api_tokens WHERE t='{secret}' -- /work/x.py")

    monkeypatch.setattr(app.state.store, "get_fulfillment_request", explode)
    async with recording_client(app, recorder, TOKENS["account1"]) as client:
        answer = await client.get("/fulfillment-requests/221")
    recorder.case()
    # This 500 is injected, so it is taken back out of the count of 5xx found.
    assert answer.status_code == 500 and recorder.counts.server_errors >= 1
    recorder.counts.server_errors -= 1
    recorder.findings = [f for f in recorder.findings if not f.startswith("5xx")]
    assert not LEAK_PATTERNS.search(answer.text) and secret not in answer.text
    assert answer.json()["requestId"] == answer.headers["x-request-id"]
    recorder.counts.notes.append("1 injected failure (SQL, path and token in it) -> clean 500")
    recorder.assert_clean()


async def test_docs_can_be_switched_off(
    tmp_path: Path, settings: Settings, store_name: str
) -> None:
    recorder = Recorder("7 misconfiguration", store_name)
    production = dataclasses.replace(settings, docs_enabled=False)
    # The document lists /docs; a 404 from it is the point here, so no conformance check.
    async with (
        running_app(production, fixture=None) as app,
        recording_client(app, recorder, conformance=False) as client,
    ):
        recorder.case(2)
        assert (await client.get("/docs")).status_code == 404
        assert (await client.get("/openapi.json")).status_code == 200  # for clients
    recorder.assert_clean()
