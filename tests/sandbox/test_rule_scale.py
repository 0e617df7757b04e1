"""10,000 rules: a request's rule matching costs the same store calls as with one rule (each
worker keeps the rules in memory and rereads them only when their version changes)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from frsync.sandbox import sql as sandbox_sql
from tests.sandbox.conftest import Connect
from tests.support import TOKENS

_COUNTED = ("request_state", "rules", "list_rules", "skip", "fire", "account_of")


async def _bulk_rules(app: Starlette, accounts: list[int], per_account: int) -> None:
    """Rules written straight into the table (10,000 POSTs would take a while), then the
    version stamp bumped as the API does."""
    rule = '{"match":{"method":"DELETE"},"action":{"status":500},"times":null,"skip":null,"probability":null}'
    rows = [(rule, None, 0, account, None) for account in accounts for _ in range(per_account)]
    insert = sandbox_sql.ADD_RULE.replace(" RETURNING id", "")
    store = app.state.store
    if store.kind == "sqlite":

        def write(db: Any) -> None:
            db.executemany(insert, rows)
            db.execute(sandbox_sql.BUMP_RULES_VERSION)

        await store.transaction(write)
        return
    from frsync.sandbox.store_postgres import pg

    async with store.transaction() as connection:
        await connection.executemany(pg(insert), rows)
        await connection.execute(sandbox_sql.BUMP_RULES_VERSION)


def _count_calls(app: Starlette, monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    calls: Counter[str] = Counter()
    store = app.state.sandbox_store
    for name in _COUNTED:
        method = getattr(store, name)

        async def counted(*args: Any, _name: str = name, _method: Any = method) -> Any:
            calls[_name] += 1
            return await _method(*args)

        monkeypatch.setattr(store, name, counted)
    return calls


async def _calls_per_request(
    app: Starlette, connect: Connect, monkeypatch: pytest.MonkeyPatch, token: str
) -> Counter[str]:
    calls = _count_calls(app, monkeypatch)
    async with connect(token) as api:
        assert (await api.get("/fulfillment-requests/221")).status_code == 200  # warm-up
        calls.clear()
        for _ in range(5):  # within the token's burst
            assert (await api.get("/fulfillment-requests/221")).status_code == 200
    monkeypatch.undo()
    return calls


async def test_matching_costs_the_same_store_calls_with_1_or_10_000_rules(
    admin: httpx.AsyncClient,
    connect: Connect,
    sandbox_app: Starlette,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await _bulk_rules(sandbox_app, [2], 1)  # account 2's: never matches account 1
    one = await _calls_per_request(sandbox_app, connect, monkeypatch, TOKENS["account1"])
    tenants = [10**12 + k for k in range(9)]
    await _bulk_rules(sandbox_app, [*tenants, 2], 1_000)
    await _bulk_rules(sandbox_app, [2], 8)  # 10,009 rules in all
    many = await _calls_per_request(sandbox_app, connect, monkeypatch, TOKENS["source10"])
    assert one == Counter(request_state=5)
    assert many == Counter(request_state=5, account_of=0)  # source 10's account: remembered
    listed = (await admin.get("/__admin/faults")).json()
    assert len(listed) == 1_000  # a page, not every rule
    assert len((await admin.get("/__admin/faults?limit=10000")).json()) == 10_000


async def test_a_tenant_rule_added_on_another_worker_is_seen_at_once(
    admin: httpx.AsyncClient, connect: Connect, sandbox_settings: Any
) -> None:
    from tests.support import running_app

    tenant = (await admin.post("/__admin/tenants", json={"fulfillmentRequests": 1})).json()
    path = f"/fulfillment-requests/{tenant['fulfillmentRequestIds'][0]}"
    async with running_app(sandbox_settings, fixture=None) as other:
        transport = httpx.ASGITransport(app=other)
        headers = {"X-API-TOKEN": tenant["tokens"]["account"]}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://o", headers=headers
        ) as api:
            assert (await api.get(path)).status_code == 200  # its rules are loaded now
            url = f"/__admin/tenants/{tenant['accountId']}/faults"
            made = (await admin.post(url, json={"action": {"status": 503}, "times": 1})).json()
            assert (await api.get(path)).status_code == 503
            assert (await api.get(path)).status_code == 200
            await admin.post(url, json={"action": {"status": 502}})
            assert (await api.get(path)).status_code == 502
            await admin.delete(f"{url}")
            assert (await api.get(path)).status_code == 200
    assert made["remaining"] == 1
