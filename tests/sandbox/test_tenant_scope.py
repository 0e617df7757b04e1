"""Everything a test drives is scoped to its tenant: fault rules, the journal, removal."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from frsync.sandbox import sql as sandbox_sql
from frsync.tokens import hash_token
from tests.console.conftest import console_client, sign_in
from tests.sandbox.conftest import Connect
from tests.sandbox.helpers import PATCH_221, SYNCED, add_rule, problem
from tests.support import TOKENS


async def _tenant(admin: httpx.AsyncClient, frs: int = 3) -> dict[str, Any]:
    response = await admin.post("/__admin/tenants", json={"fulfillmentRequests": frs})
    assert response.status_code == 201, response.text
    tenant: dict[str, Any] = response.json()
    return tenant


async def _tenant_rule(
    admin: httpx.AsyncClient, tenant: dict[str, Any], **rule: Any
) -> dict[str, Any]:
    response = await admin.post(f"/__admin/tenants/{tenant['accountId']}/faults", json=rule)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def _fr_path(tenant: dict[str, Any], k: int = 0) -> str:
    return f"/fulfillment-requests/{tenant['fulfillmentRequestIds'][k]}"


async def test_two_tenants_with_a_catch_all_rule_each_see_only_their_own(
    admin: httpx.AsyncClient, connect: Connect
) -> None:
    a, b = await _tenant(admin), await _tenant(admin)
    await _tenant_rule(admin, a, action={"status": 502})
    await _tenant_rule(admin, b, action={"status": 504})
    for tenant, status in ((a, 502), (b, 504)):
        for kind in ("account", "source", "channel"):
            async with connect(tenant["tokens"][kind]) as api:
                problem(await api.get(_fr_path(tenant)), status)
    async with connect(TOKENS["account1"]) as other:  # nobody else is touched
        assert (await other.get("/fulfillment-requests/221")).status_code == 200
    listed = (await admin.get("/__admin/faults")).json()
    assert [rule["accountId"] for rule in listed] == [a["accountId"], b["accountId"]]
    mine = (await admin.get(f"/__admin/tenants/{a['accountId']}/faults")).json()
    assert [rule["action"] for rule in mine] == [{"status": 502}]


async def test_tenant_rule_may_not_name_another_account(admin: httpx.AsyncClient) -> None:
    a, b = await _tenant(admin), await _tenant(admin)
    rule = {"match": {"accountId": b["accountId"]}, "action": {"status": 500}}
    body = problem(await admin.post(f"/__admin/tenants/{a['accountId']}/faults", json=rule), 400)
    assert [error["field"] for error in body["errors"]] == ["match.accountId"]
    own = {"match": {"accountId": a["accountId"]}, "action": {"status": 500}}
    await _tenant_rule(admin, a, **own)
    assert len((await admin.get("/__admin/faults")).json()) == 1


async def test_another_tenants_rule_id_and_non_tenants_are_404(admin: httpx.AsyncClient) -> None:
    a, b = await _tenant(admin), await _tenant(admin)
    rule = await _tenant_rule(admin, a, action={"status": 500})
    problem(await admin.delete(f"/__admin/tenants/{b['accountId']}/faults/{rule['id']}"), 404)
    for path in ("faults", "requests"):
        problem(await admin.get(f"/__admin/tenants/1/{path}"), 404)  # loaded, not a tenant
        problem(await admin.get(f"/__admin/tenants/999/{path}"), 404)
    assert (await admin.delete(f"/__admin/tenants/{a['accountId']}")).status_code == 204
    problem(await admin.get(f"/__admin/tenants/{a['accountId']}/faults"), 404)
    assert (await admin.get("/__admin/faults")).json() == []  # its rules went with it


async def test_clearing_a_tenants_rules_leaves_the_others(
    admin: httpx.AsyncClient, connect: Connect
) -> None:
    a, b = await _tenant(admin), await _tenant(admin)
    await _tenant_rule(admin, a, action={"status": 500})
    await _tenant_rule(admin, b, action={"status": 500})
    await add_rule(admin, match={"accountId": 2}, action={"status": 503})
    assert (await admin.delete(f"/__admin/tenants/{a['accountId']}/faults")).status_code == 204
    left = (await admin.get("/__admin/faults")).json()
    assert [rule["accountId"] for rule in left] == [b["accountId"], None]
    async with connect(a["tokens"]["account"]) as api:
        assert (await api.get(_fr_path(a))).status_code == 200


async def test_tenant_journal_holds_only_its_requests_with_token_ids(
    admin: httpx.AsyncClient, connect: Connect
) -> None:
    a, b = await _tenant(admin), await _tenant(admin)
    for tenant in (a, b):
        for kind in ("account", "source", "channel"):
            async with connect(tenant["tokens"][kind]) as api:
                assert (await api.get(_fr_path(tenant))).status_code == 200
    entries = (await admin.get(f"/__admin/tenants/{a['accountId']}/requests")).json()
    assert [e["tokenId"] for e in entries] == [
        a["tokenIds"][k] for k in ("channel", "source", "account")
    ]
    assert {e["accountId"] for e in entries} == {a["accountId"]}
    same = (await admin.get(f"/__admin/requests?accountId={a['accountId']}")).json()
    assert same == entries
    assert (await admin.delete(f"/__admin/tenants/{a['accountId']}/requests")).status_code == 204
    assert (await admin.get(f"/__admin/tenants/{a['accountId']}/requests")).json() == []
    assert len((await admin.get("/__admin/requests")).json()) == 3  # b's are still there
    assert (await admin.delete(f"/__admin/tenants/{b['accountId']}")).status_code == 204
    assert (await admin.get("/__admin/requests")).json() == []  # removed with the tenant


async def test_journal_pages_return_every_entry_exactly_once(
    admin: httpx.AsyncClient, connect: Connect
) -> None:
    tenant = await _tenant(admin)
    async with connect(tenant["tokens"]["account"]) as api:
        for n in range(23):
            await api.get(_fr_path(tenant, n % 3))
    seen: list[int] = []
    before = ""
    while True:
        page = (
            await admin.get(f"/__admin/tenants/{tenant['accountId']}/requests?limit=5{before}")
        ).json()
        if not page:
            break
        seen += [entry["id"] for entry in page]
        before = f"&beforeId={page[-1]['id']}"
    assert len(seen) == len(set(seen)) == 23
    assert seen == sorted(seen, reverse=True)


async def test_removed_tenants_token_is_refused_on_the_next_request(
    admin: httpx.AsyncClient, connect: Connect
) -> None:
    tenant = await _tenant(admin)
    async with connect(tenant["tokens"]["source"]) as api:
        assert (await api.get(_fr_path(tenant))).status_code == 200
        assert (await admin.delete(f"/__admin/tenants/{tenant['accountId']}")).status_code == 204
        problem(await api.get(_fr_path(tenant)), 401)


async def test_skip_then_revoke_token_cuts_the_sixth_patch_off(
    admin: httpx.AsyncClient, connect: Connect
) -> None:
    tenant = await _tenant(admin, frs=8)
    rule = {"match": {"method": "PATCH"}, "skip": 5, "times": 1,
            "action": {"status": 401, "revokeToken": True}}  # fmt: skip
    created = await _tenant_rule(admin, tenant, **rule)
    assert created["skip"] == 5 and created["accountId"] == tenant["accountId"]
    statuses = []
    async with connect(tenant["tokens"]["account"]) as api:
        for k in range(8):
            path = f"{_fr_path(tenant, k)}/accounting-sync"
            statuses.append((await api.patch(path, json=SYNCED)).status_code)
        after = await api.get(_fr_path(tenant))
    assert statuses == [204] * 5 + [401] * 3
    assert problem(after, 401)["type"].endswith("unauthorized")  # auth's own 401 now
    journal = (await admin.get(f"/__admin/tenants/{tenant['accountId']}/requests")).json()
    # The revoked token's own 401s stay in its tenant's journal, the GET after them too.
    assert [e["status"] for e in reversed(journal)] == [204] * 5 + [401] * 4
    assert {e["tokenId"] for e in journal} == {tenant["tokenIds"]["account"]}


async def _journal(admin: httpx.AsyncClient, tenant: dict[str, Any]) -> list[dict[str, Any]]:
    response = await admin.get(f"/__admin/tenants/{tenant['accountId']}/requests")
    assert response.status_code == 200, response.text
    entries: list[dict[str, Any]] = response.json()
    return entries


async def test_revoked_tenant_tokens_401s_are_in_its_journal_and_no_other(
    admin: httpx.AsyncClient, connect: Connect, sandbox_app: Starlette
) -> None:
    a, b = await _tenant(admin), await _tenant(admin)
    assert await sandbox_app.state.store.revoke_token(a["tokenIds"]["source"])
    async with connect(a["tokens"]["source"]) as revoked:
        problem(await revoked.get(_fr_path(a)), 401)
        problem(await revoked.patch(f"{_fr_path(a)}/accounting-sync", json=SYNCED), 401)
    patched, got = await _journal(admin, a)
    for entry in (patched, got):
        assert entry["status"] == 401 and entry["accountId"] == a["accountId"]
        assert entry["tokenId"] == a["tokenIds"]["source"] and entry["tokenType"] == "source"
        assert entry["body"] is None and entry["bodyOmitted"] is True  # still no valid token
    assert (patched["method"], got["method"]) == ("PATCH", "GET")
    assert await _journal(admin, b) == []


async def test_unknown_tokens_requests_are_in_no_tenants_journal(
    admin: httpx.AsyncClient, connect: Connect
) -> None:
    tenant = await _tenant(admin)
    async with connect("a-token-no-tenant-was-ever-given-0001") as stranger:
        problem(await stranger.get(_fr_path(tenant)), 401)
    assert await _journal(admin, tenant) == []
    [entry] = (await admin.get("/__admin/requests")).json()
    assert entry["status"] == 401 and entry["accountId"] is None and entry["tokenId"] is None


async def test_revoked_token_of_a_removed_tenant_is_attributed_to_no_one(
    admin: httpx.AsyncClient, connect: Connect, sandbox_app: Starlette
) -> None:
    tenant = await _tenant(admin)
    assert await sandbox_app.state.store.revoke_token(tenant["tokenIds"]["account"])
    assert (await admin.post("/__admin/reset")).status_code == 204  # removes the tenant
    async with connect(tenant["tokens"]["account"]) as revoked:
        problem(await revoked.get(_fr_path(tenant)), 401)
    [entry] = (await admin.get("/__admin/requests")).json()
    assert entry["accountId"] is None and entry["tokenId"] is None


@pytest.mark.parametrize(
    ("rule", "field"),
    [({"action": {"status": 500, "revokeToken": True}}, "action"),
     ({"action": {"delayMs": 5, "revokeToken": True}}, "action"),
     ({"action": {"status": 401, "revokeToken": False}}, "action.revokeToken"),
     ({"action": {"status": 500}, "skip": -1}, "skip"),
     ({"action": {"status": 500}, "skip": "5"}, "skip")],
)  # fmt: skip
async def test_bad_skip_and_revoke_token_are_refused(
    admin: httpx.AsyncClient, rule: dict[str, Any], field: str
) -> None:
    body = problem(await admin.post("/__admin/faults", json=rule), 400)
    assert field in [error["field"] for error in body["errors"]]


async def test_rules_are_bounded_per_tenant_and_overall(
    admin: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sandbox_sql, "MAX_TENANT_RULES", 2)
    monkeypatch.setattr(sandbox_sql, "MAX_RULES", 3)
    a, b = await _tenant(admin), await _tenant(admin)
    for _ in range(2):
        await _tenant_rule(admin, a, action={"status": 500})
    url = f"/__admin/tenants/{a['accountId']}/faults"
    assert (
        "1,000"
        not in problem(await admin.post(url, json={"action": {"status": 500}}), 409)["detail"]
    )
    await _tenant_rule(admin, b, action={"status": 500})
    body = problem(await admin.post("/__admin/faults", json={"action": {"status": 500}}), 409)
    assert "sandbox holds at most" in body["detail"]
    assert len((await admin.get("/__admin/faults")).json()) == 3


async def test_rule_listing_pages_in_creation_order(admin: httpx.AsyncClient) -> None:
    made = [(await add_rule(admin, action={"status": 500}))["id"] for _ in range(5)]
    first = (await admin.get("/__admin/faults?limit=2")).json()
    rest = (await admin.get(f"/__admin/faults?afterId={first[-1]['id']}")).json()
    assert [r["id"] for r in first + rest] == made
    problem(await admin.get("/__admin/faults?limit=10001"), 400)


async def test_global_patch_rule_still_fires_for_tenants(
    admin: httpx.AsyncClient, connect: Connect
) -> None:
    tenant = await _tenant(admin)
    await add_rule(admin, match={"method": "PATCH"}, action={"status": 503}, times=1)
    async with connect(tenant["tokens"]["account"]) as api:
        path = f"{_fr_path(tenant)}/accounting-sync"
        assert (await api.patch(path, json=SYNCED)).status_code == 503
    async with connect(TOKENS["account1"]) as api:
        assert (await api.patch(PATCH_221, json=SYNCED)).status_code == 204


async def test_a_reset_tenants_token_opens_neither_the_api_nor_the_console_before_its_purge(
    admin: httpx.AsyncClient, connect: Connect, sandbox_app: Starlette,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """A reset removes tenants at once and purges their rows afterwards; meanwhile their
    tokens' rows still exist, and must open nothing. The purge is held back here so that
    the window stays open for the whole test."""
    monkeypatch.setattr(sandbox_app.state.sandbox_purger, "kick", lambda: None)
    tenant = await _tenant(admin)
    token = tenant["tokens"]["account"]
    async with console_client(sandbox_app, "http://sandbox") as before:
        assert (await sign_in(before, token)).status_code == 303  # signed in
        assert 'name="token"' not in (await before.get("/console")).text  # the overview
        assert (await before.get("/console/errors")).status_code == 200
        assert (await admin.post("/__admin/reset")).status_code == 204
        assert 'name="token"' in (await before.get("/console")).text  # the sign-in form
        assert (await before.get("/console/errors")).status_code == 303  # to sign in
    async with console_client(sandbox_app, "http://sandbox") as after:
        assert (await sign_in(after, token)).status_code == 401
    async with connect(token) as api:
        problem(await api.get(_fr_path(tenant)), 401)
    hashes = await sandbox_app.state.sandbox_store.known_tokens([hash_token(token)])
    assert hashes, "the purge ran: the test no longer shows the window it is about"
