"""Every admin body goes through the PATCH's one decoder and rules: deep nesting and repeated
keys are a 400 naming the body, non-ASCII names and numbers are refused, never folded; and a
refused request changes nothing."""

from __future__ import annotations

import httpx
import pytest

from tests.sandbox.helpers import problem

JSON = {"Content-Type": "application/json"}
DEEP = b'{"a":' * 10_000 + b"{}" + b"}" * 10_000  # 60 KB: under the 64 KiB admin bound
BODIES = {
    "10,000 levels of nesting": DEEP,
    "an array nested deep": b'{"action": ' + b"[" * 5_000 + b"]" * 5_000 + b"}",
    "a repeated key": b'{"action": {"status": 500}, "action": {"status": 503}}',
    "a repeated nested key": b'{"action": {"status": 500, "status": 503}}',
}
TENANT_BODIES = {
    "10,000 levels of nesting": DEEP,
    "10,000 arrays": b"[" * 10_000 + b"]" * 10_000,
    "a repeated key": b'{"fulfillmentRequests": 1, "fulfillmentRequests": 2}',
    "whitespace alone (a body, and not JSON; only an empty one means the defaults)": b"\r\n ",
}


async def _tenant_url(admin: httpx.AsyncClient) -> str:
    tenant = (await admin.post("/__admin/tenants", json={"fulfillmentRequests": 1})).json()
    return f"/__admin/tenants/{tenant['accountId']}/faults"


@pytest.mark.parametrize("body", BODIES.values(), ids=BODIES.keys())
async def test_hostile_rule_bodies_are_a_400_on_both_fault_endpoints(
    admin: httpx.AsyncClient, body: bytes
) -> None:
    for url in ("/__admin/faults", await _tenant_url(admin)):
        answer = problem(await admin.post(url, content=body, headers=JSON), 400)
        assert answer["errors"][0]["field"] == ""
    assert (await admin.get("/__admin/faults")).json() == []


@pytest.mark.parametrize("body", TENANT_BODIES.values(), ids=TENANT_BODIES.keys())
async def test_hostile_tenant_bodies_are_a_400(admin: httpx.AsyncClient, body: bytes) -> None:
    problem(await admin.post("/__admin/tenants", content=body, headers=JSON), 400)


@pytest.mark.parametrize("method", ["ＰＡＴＣＨ", "ß", "í", "PATCH ", "PATCH\n", "P1", ""])
async def test_non_ascii_methods_are_refused_not_folded(
    admin: httpx.AsyncClient, method: str
) -> None:
    rule = {"match": {"method": method}, "action": {"status": 500}}
    answer = problem(await admin.post("/__admin/faults", json=rule), 400)
    assert [error["field"] for error in answer["errors"]] == ["match.method"]
    problem(await admin.get("/__admin/requests", params={"method": method or "x y"}), 400)


@pytest.mark.parametrize("number", ["٣", "１２", "12 ", "+12", "012", "1e3"])
async def test_non_ascii_integers_are_refused_everywhere(
    admin: httpx.AsyncClient, number: str
) -> None:
    for query in ("limit", "status", "tokenId", "accountId", "beforeId"):
        answer = problem(await admin.get("/__admin/requests", params={query: number}), 400)
        assert answer["errors"][0]["field"] == query
    for query in ("limit", "afterId", "accountId"):
        problem(await admin.get("/__admin/faults", params={query: number}), 400)
    problem(await admin.delete(f"/__admin/faults/{number}"), 400)
    problem(await admin.delete(f"/__admin/tenants/{number}"), 400)
    problem(await admin.get(f"/__admin/tenants/{number}/requests"), 400)
    rule = {"match": {"fulfillmentRequestId": number}, "action": {"status": 500}}
    problem(await admin.post("/__admin/faults", json=rule), 400)
    problem(await admin.post("/__admin/tenants", json={"fulfillmentRequests": number}), 400)
