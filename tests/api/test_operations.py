"""The endpoints around the API: health, readiness, the OpenAPI document, the docs page,
and the headers and shapes every answer shares."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from starlette.applications import Starlette

from frsync.config import Settings
from tests.api.helpers import assert_problem
from tests.support import running_app

DOCUMENT = Path(__file__).parents[2] / "src" / "frsync" / "api" / "openapi.json"


async def test_healthz_and_readyz_need_no_token(anon: httpx.AsyncClient) -> None:
    assert (await anon.get("/healthz")).json() == {"status": "ok"}
    ready = await anon.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok", "store": "ok", "rateLimit": "ok"}


async def test_openapi_document_is_the_checked_in_one(anon: httpx.AsyncClient) -> None:
    served = (await anon.get("/openapi.json")).json()
    assert served == json.loads(DOCUMENT.read_text())
    assert served["openapi"].startswith("3.1")
    patch = served["paths"]["/fulfillment-requests/{fulfillmentRequestId}/accounting-sync"]["patch"]
    assert patch["summary"] == "Sync Accounting"
    assert patch["description"] == "Update Fulfillment Request as synced to external system"
    examples = patch["requestBody"]["content"]["application/json"]["examples"]
    assert set(examples) == {"success-1", "error-1"}
    assert {"204", "400", "401", "404", "413", "415", "429", "503"} <= set(patch["responses"])
    schemas = served["components"]["schemas"]
    assert {"FulfillmentAccountingSyncRequest", "FulfillmentAccountingSyncItem"} <= set(schemas)


async def test_reference_examples_from_the_document_work_verbatim(api: httpx.AsyncClient) -> None:
    document = json.loads(DOCUMENT.read_text())
    patch = document["paths"]["/fulfillment-requests/{fulfillmentRequestId}/accounting-sync"][
        "patch"
    ]
    for name in ("success-1", "error-1"):
        example = patch["requestBody"]["content"]["application/json"]["examples"][name]["value"]
        answer = await api.patch("/fulfillment-requests/221/accounting-sync", json=example)
        assert answer.status_code == 204, name


async def test_docs_page_renders_from_the_document(anon: httpx.AsyncClient) -> None:
    page = await anon.get("/docs")
    assert page.status_code == 200
    assert "openapi.json" in page.text
    assert "http" not in page.text.split("<script>")[0].lower().replace(
        "https://", "x"
    )  # nothing external


async def test_docs_can_be_switched_off(tmp_path: Path, settings: Settings) -> None:
    from dataclasses import replace

    async with running_app(replace(settings, docs_enabled=False)) as app:
        # a plain client: the document (rightly) lists /docs, which is off here
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as anon:
            assert_problem(await anon.get("/docs"), 404)


async def test_every_answer_carries_the_safety_headers(
    api: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    for answer in (
        await api.get("/fulfillment-requests/221"),
        await api.get("/fulfillment-requests/nope"),
        await anon.get("/fulfillment-requests/221"),
        await anon.get("/healthz"),
        await anon.get("/no/such/path"),
    ):
        assert answer.headers["cache-control"] == "no-store"
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert len(answer.headers["x-request-id"]) == 16


async def test_other_verbs_are_405_with_allow(api: httpx.AsyncClient) -> None:
    for method, path in [
        ("DELETE", "/fulfillment-requests/221"),
        ("PUT", "/fulfillment-requests/221/accounting-sync"),
        ("POST", "/fulfillment-requests/221/accounting-sync"),
        ("GET", "/fulfillment-requests/221/accounting-sync"),
        ("POST", "/healthz"),
    ]:
        answer = await api.request(method, path)
        assert_problem(answer, 405)
        assert answer.headers["allow"]


async def test_unexpected_failure_is_a_clean_500_with_request_id(
    app: Starlette, api: httpx.AsyncClient, caplog
) -> None:
    class Broken(Exception):
        pass

    async def explode(*args: object, **kwargs: object) -> None:
        raise Broken("SELECT secret FROM /work/tok-account-1 path")

    app.state.store.get_fulfillment_request = explode
    answer = await api.get("/fulfillment-requests/221")
    problem = assert_problem(answer, 500)
    assert problem["requestId"] == answer.headers["x-request-id"]
    assert "SELECT" not in answer.text and "/work" not in answer.text and "tok-" not in answer.text
    assert any(answer.headers["x-request-id"] in str(r.__dict__) for r in caplog.records)
