"""Reset is one atomic step against concurrent PATCHes, and stays fast however many tenants
were made since."""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from typing import Any

import httpx
from starlette.applications import Starlette

from frsync.config import Settings
from frsync.sandbox import sql as sandbox_sql
from frsync.sandbox.store import NEXT_ID, TENANT_ID_BASE, TenantPlan
from frsync.store.postgres_sql import arrays
from frsync.store.sqlite import json_rows
from tests.support import OPERATOR_TOKEN, TOKENS, running_app

FRS = (221, 222, 223, 225, 226, 227)


async def _patch_until(stop: asyncio.Event, api: httpx.AsyncClient, client: int) -> int:
    acknowledged = 0
    for n in itertools.count():
        if stop.is_set():
            return acknowledged
        fr = FRS[(client + n) % len(FRS)]
        body = {"externalAccountingId": f"L{fr}-{client}-{n}"}
        response = await api.patch(f"/fulfillment-requests/{fr}/accounting-sync", json=body)
        assert response.status_code in (204, 503), response.text
        acknowledged += response.status_code == 204
    return acknowledged


async def _every_fr_at_baseline_or_with_history(
    api: httpx.AsyncClient, baseline: dict[int, Any]
) -> None:
    for fr in FRS:
        now = (await api.get(f"/fulfillment-requests/{fr}")).json()["externalAccountingId"]
        response = await api.get(f"/fulfillment-requests/{fr}/accounting-sync/history")
        assert response.status_code == 200, response.text
        history = response.json()
        if now == baseline[fr]:
            continue
        assert history, f"FR {fr} changed to {now!r} with no history since the reset"
        assert history[0]["changes"]["externalAccountingId"]["after"] == now


async def test_reset_under_16_patching_clients_loses_no_history(
    sandbox_settings: Settings,
) -> None:
    settings = sandbox_settings.replace(burst=10**6, rate=10**6)
    async with running_app(settings) as app:
        transport = httpx.ASGITransport(app=app)
        async with (
            httpx.AsyncClient(transport=transport, base_url="http://s",
                              headers={"X-API-TOKEN": TOKENS["account1"]}) as api,
            httpx.AsyncClient(transport=transport, base_url="http://s",
                              headers={"X-API-TOKEN": OPERATOR_TOKEN}) as admin,
        ):  # fmt: skip
            await _rounds(api, admin)


async def _rounds(api: httpx.AsyncClient, admin: httpx.AsyncClient) -> None:
    baseline = {
        fr: (await api.get(f"/fulfillment-requests/{fr}")).json()["externalAccountingId"]
        for fr in FRS
    }
    for _ in range(20):
        stop = asyncio.Event()
        patchers = [asyncio.create_task(_patch_until(stop, api, c)) for c in range(16)]
        await asyncio.sleep(0.05)
        assert (await admin.post("/__admin/reset")).status_code == 204
        await asyncio.sleep(0.05)
        stop.set()
        assert sum(await asyncio.gather(*patchers)) > 0
        await _every_fr_at_baseline_or_with_history(api, baseline)


async def make_tenants(app: Starlette, count: int) -> None:
    """`count` tenants of one FR with one item, written in bulk (10,000 through the API
    would take minutes); ids from the same counter the API uses."""
    size = TenantPlan(1, 1, {}, 0).id_count
    rows: dict[str, list[tuple[Any, ...]]] = {kind: [] for kind in sandbox_sql.TENANT_SQL}
    for n in range(count):
        hashes = {kind: os.urandom(32) for kind in ("account", "source", "channel")}
        plan = TenantPlan(1, 1, hashes, 0)  # type: ignore[arg-type]
        _, tenant = sandbox_sql.tenant_rows(plan, TENANT_ID_BASE + n * size)
        for kind, more in tenant.items():
            rows[kind] += more
    counter = (NEXT_ID, TENANT_ID_BASE + count * size, count * size)
    store = app.state.store
    if store.kind == "sqlite":

        def write(db: Any) -> None:
            db.execute(sandbox_sql.RESERVE_IDS, counter)
            for _, statement, params in sandbox_sql.tenant_statements(rows, json_rows):
                db.executemany(statement, params)

        await store.transaction(write)
        return
    from frsync.sandbox.store_postgres import pg

    async with store.transaction(bounded=False) as connection:
        await connection.execute(pg(sandbox_sql.RESERVE_IDS), *counter)
        for _, statement, params in sandbox_sql.tenant_statements(rows, arrays):
            await connection.executemany(pg(statement), params)


async def _count(app: Starlette, statement: str) -> int:
    store = app.state.store
    if store.kind == "sqlite":
        (value,) = await store.read(lambda db: db.execute(statement).fetchone())
        return int(value)
    async with store.acquire() as connection:
        return int(await connection.fetchval(statement))


async def test_reset_after_10_000_tenants_is_quick_and_deletes_their_tokens(
    admin: httpx.AsyncClient, sandbox_app: Starlette
) -> None:
    await make_tenants(sandbox_app, 10_000)
    tenant = (await admin.post("/__admin/tenants", json={"fulfillmentRequests": 2})).json()
    assert tenant["accountId"] >= TENANT_ID_BASE + 50_000  # the counter moved on
    tenant_tokens = f"SELECT COUNT(*) FROM api_tokens WHERE scope_id >= {TENANT_ID_BASE}"
    assert await _count(sandbox_app, tenant_tokens) == 30_003
    started = time.perf_counter()
    assert (await admin.post("/__admin/reset")).status_code == 204
    took = time.perf_counter() - started
    await sandbox_app.state.sandbox_purger.wait()  # their rows go right after
    assert await _count(sandbox_app, tenant_tokens) == 0  # deleted, not kept revoked
    assert (
        await _count(sandbox_app, f"SELECT COUNT(*) FROM accounts WHERE id >= {TENANT_ID_BASE}")
        == 0
    )
    assert await _count(sandbox_app, "SELECT COUNT(*) FROM sandbox_tenants") == 0
    print(f"reset took {took * 1000:.0f} ms")
    assert took < 10.0  # generous: measured in bench/sandbox_reset.py
    problem_status = (await admin.delete(f"/__admin/tenants/{tenant['accountId']}")).status_code
    assert problem_status == 204  # removed by the reset: still idempotent
