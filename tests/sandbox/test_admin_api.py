"""The admin API's door: sandbox mode only, operator token only, not rate limited, and bad
input refused whole with the field named."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.sandbox.conftest import Connect
from tests.sandbox.helpers import PATCH_221, SYNCED, add_rule, problem
from tests.support import OPERATOR_TOKEN, TOKENS, make_settings, running_app

ADMIN_CALLS = [
    ("POST", "/__admin/reset"),
    ("POST", "/__admin/tenants"),
    ("DELETE", "/__admin/tenants/5"),
    ("GET", "/__admin/faults"),
    ("POST", "/__admin/faults"),
    ("DELETE", "/__admin/faults"),
    ("DELETE", "/__admin/faults/1"),
    ("GET", "/__admin/requests"),
    ("DELETE", "/__admin/requests"),
]


@pytest.mark.parametrize(("method", "path"), ADMIN_CALLS)
async def test_admin_paths_are_plain_404s_without_sandbox_mode(
    tmp_path: Path, database_url: str, method: str, path: str
) -> None:
    settings = make_settings(tmp_path, database_url=database_url)
    async with running_app(settings) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://x") as client:
            admin = await client.request(method, path, headers={"X-API-TOKEN": OPERATOR_TOKEN})
            unknown = await client.request(method, "/no-such-path")
    assert admin.status_code == unknown.status_code == 404
    strip = lambda body: {k: v for k, v in body.items() if k != "requestId"}  # noqa: E731
    assert strip(admin.json()) == strip(unknown.json())


@pytest.mark.parametrize(("method", "path"), ADMIN_CALLS)
@pytest.mark.parametrize("token", [None, TOKENS["account1"], TOKENS["source10"], "not-a-token"])
async def test_admin_api_refuses_anything_but_an_operator_token(
    connect: Connect, method: str, path: str, token: str | None
) -> None:
    async with connect(token) as client:
        body = problem(await client.request(method, path), 401)
    assert OPERATOR_TOKEN not in str(body)


async def test_operator_token_is_refused_on_fr_endpoints_even_in_sandbox(connect: Connect) -> None:
    async with connect(OPERATOR_TOKEN) as client:
        body = problem(await client.patch(PATCH_221, json=SYNCED), 401)
    assert "operator" in body["detail"]


async def test_admin_api_is_not_rate_limited(tmp_path: Path, database_url: str) -> None:
    settings = make_settings(tmp_path, database_url=database_url, sandbox=True, burst=2)
    async with running_app(settings) as app:
        transport = httpx.ASGITransport(app=app)
        headers = {"X-API-TOKEN": OPERATOR_TOKEN}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://x", headers=headers
        ) as c:
            answers = [(await c.get("/__admin/faults")).status_code for _ in range(10)]
    assert answers == [200] * 10


BAD_RULES = {
    "unknown match key": ({"match": {"verb": "PATCH"}, "action": {"status": 503}}, "match.verb"),
    "status outside the list": ({"action": {"status": 418}}, "action.status"),
    "delay over a minute": ({"action": {"delayMs": 60_001}}, "action.delayMs"),
    "negative delay": ({"action": {"delayMs": -1}}, "action.delayMs"),
    "probability over 1": ({"action": {"status": 500}, "probability": 1.5}, "probability"),
    "probability below 0": ({"action": {"status": 500}, "probability": -0.1}, "probability"),
    "times zero": ({"action": {"status": 500}, "times": 0}, "times"),
    "times a string": ({"action": {"status": 500}, "times": "1"}, "times"),
    "no action": ({"match": {"method": "PATCH"}}, "action"),
    "empty action": ({"action": {}}, "action"),
    "unknown action key": ({"action": {"status": 500, "sleep": 1}}, "action.sleep"),
    "unknown top-level key": ({"action": {"status": 500}, "time": 2}, "time"),
    "drop false": ({"action": {"drop": False}}, "action.drop"),
    "drop with a status": ({"action": {"drop": True, "status": 500}}, "action"),
    "bad token type": (
        {"match": {"tokenType": "operator"}, "action": {"status": 500}},
        "match.tokenType",
    ),
    "fr id as a string": (
        {"match": {"fulfillmentRequestId": "221"}, "action": {"status": 500}},
        "match.fulfillmentRequestId",
    ),
    "not an object": ([1, 2], ""),
    "detail with U+0000": ({"action": {"status": 500, "detail": "a\x00b"}}, "action.detail"),
    "path without a slash": ({"match": {"path": "x*"}, "action": {"status": 500}}, "match.path"),
    "path over 2,048": (
        {"match": {"path": "/" + "x" * 2048}, "action": {"drop": True}},
        "match.path",
    ),
    "retryAfter over a day": (
        {"action": {"status": 503, "retryAfter": 86_401}},
        "action.retryAfter",
    ),
    "skip without action": ({"skip": 1}, "action"),
}


@pytest.mark.parametrize(("rule", "field"), BAD_RULES.values(), ids=BAD_RULES.keys())
async def test_bad_fault_rule_is_refused_naming_the_field_and_changes_nothing(
    admin: httpx.AsyncClient, rule: object, field: str
) -> None:
    body = problem(await admin.post("/__admin/faults", json=rule), 400)
    assert field in [error["field"] for error in body["errors"]]
    assert (await admin.get("/__admin/faults")).json() == []


async def test_every_violation_of_a_rule_is_listed(admin: httpx.AsyncClient) -> None:
    rule = {"match": {"verb": "GET"}, "action": {"status": 418, "delayMs": 70_000}, "times": 0}
    body = problem(await admin.post("/__admin/faults", json=rule), 400)
    fields = {error["field"] for error in body["errors"]}
    assert fields == {"match.verb", "action.status", "action.delayMs", "times"}


async def test_unknown_key_suggests_the_close_one(admin: httpx.AsyncClient) -> None:
    body = problem(await admin.post("/__admin/faults", json={"action": {"statu": 500}}), 400)
    assert "Did you mean 'status'?" in str(body["errors"])


async def test_malformed_json_is_a_400(admin: httpx.AsyncClient) -> None:
    response = await admin.post(
        "/__admin/faults", content=b"{nope", headers={"Content-Type": "application/json"}
    )
    problem(response, 400)


BAD_TENANTS = {
    "no FRs": ({"fulfillmentRequests": 0}, "fulfillmentRequests"),
    "10,001 FRs": ({"fulfillmentRequests": 10_001}, "fulfillmentRequests"),
    "no items": ({"itemsPerRequest": 0}, "itemsPerRequest"),
    "51 items": ({"itemsPerRequest": 51}, "itemsPerRequest"),
    "a boolean": ({"fulfillmentRequests": True}, "fulfillmentRequests"),
    "unknown key": ({"frs": 3}, "frs"),
    "null": (None, ""),
    "a list": ([10], ""),
}


@pytest.mark.parametrize(("body", "field"), BAD_TENANTS.values(), ids=BAD_TENANTS.keys())
async def test_bad_tenant_request_is_refused_naming_the_field(
    admin: httpx.AsyncClient, body: object, field: str
) -> None:
    one = {"fulfillmentRequests": 1, "itemsPerRequest": 1}
    first = (await admin.post("/__admin/tenants", json=one)).json()
    raw = json.dumps(body)  # `null` too, which json=None would not send
    headers = {"Content-Type": "application/json"}
    answer = problem(await admin.post("/__admin/tenants", content=raw, headers=headers), 400)
    assert field in [error["field"] for error in answer["errors"]]
    # Nothing was made, not even an id taken: the next tenant follows the first directly.
    second = (await admin.post("/__admin/tenants", json=one)).json()
    assert second["accountId"] == first["accountId"] + 5


@pytest.mark.parametrize(
    ("path", "field"),
    [("/__admin/requests?limit=0", "limit"), ("/__admin/requests?limit=1001", "limit"),
     ("/__admin/requests?stat=200", "stat"), ("/__admin/requests?status=abc", "status"),
     ("/__admin/requests?tokenId=-1", "tokenId"), ("/__admin/requests?path=nope", "path")],
)  # fmt: skip
async def test_bad_journal_filter_is_a_400_naming_it(
    admin: httpx.AsyncClient, path: str, field: str
) -> None:
    body = problem(await admin.get(path), 400)
    assert body["errors"][0]["field"] == field


async def test_unknown_fault_and_tenant_ids_are_404(admin: httpx.AsyncClient) -> None:
    problem(await admin.delete("/__admin/faults/999"), 404)
    problem(await admin.delete("/__admin/tenants/1"), 404)  # a loaded account, not a tenant
    problem(await admin.delete("/__admin/tenants/abc"), 400)


async def test_openapi_lists_the_admin_api_under_its_own_tag(admin: httpx.AsyncClient) -> None:
    document = (await admin.get("/openapi.json")).json()
    operation = document["paths"]["/__admin/faults"]["post"]
    assert operation["tags"] == ["Sandbox admin"]
    assert {"name": "Sandbox admin"}.items() <= document["tags"][-1].items()
    assert "$ref" in str(document["paths"]["/__admin/requests"]["get"]["responses"]["200"])


async def test_openapi_has_no_admin_api_without_sandbox_mode(tmp_path: Path) -> None:
    async with running_app(make_settings(tmp_path), fixture=None) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://x") as client:
            document = (await client.get("/openapi.json")).json()
    assert not any(path.startswith("/__admin") for path in document["paths"])


async def test_created_rule_is_listed_with_remaining(admin: httpx.AsyncClient) -> None:
    rule = await add_rule(admin, match={"method": "patch"}, action={"status": 500}, times=3)
    assert rule["match"] == {"method": "PATCH"}
    assert rule["remaining"] == 3 and rule["times"] == 3 and rule["probability"] is None
    assert (await admin.get("/__admin/faults")).json() == [rule]
