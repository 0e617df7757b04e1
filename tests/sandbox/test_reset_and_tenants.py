"""Reset back to the last load, and tenants: isolated, removable, ids never reused."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import asyncpg
import httpx
import pytest

from frsync.config import Settings
from tests.sandbox.conftest import Connect
from tests.sandbox.helpers import PATCH_221, SYNCED, add_rule, problem
from tests.support import (
    OPERATOR_TOKEN,
    TOKENS,
    make_settings,
    reset_postgres,
    running_app,
    until,
)


async def _state(api: httpx.AsyncClient, fr_id: int = 221) -> tuple[object, ...]:
    fr = (await api.get(f"/fulfillment-requests/{fr_id}")).json()
    history = (await api.get(f"/fulfillment-requests/{fr_id}/accounting-sync/history")).json()
    items = [i["externalAccountingItemId"] for i in fr["fulfillmentRequestItems"]]
    return (fr["accountingSynced"], fr["externalAccountingId"], fr["accountingError"],
            fr["accountingSyncedAt"], fr["updatedAt"], items, history)  # fmt: skip


async def test_reset_restores_a_changed_fr_its_items_and_history(
    admin: httpx.AsyncClient, connect: Connect
) -> None:
    async with connect(TOKENS["account1"]) as api:
        before = await _state(api)
        synced_225 = await _state(api, 225)
        body = {**SYNCED, "items": [{"id": 12312, "externalAccountingItemId": "QB-1-A"}]}
        assert (await api.patch(PATCH_221, json=body)).status_code == 204
        clear = {"accountingSynced": None, "externalAccountingId": None}
        assert (
            await api.patch("/fulfillment-requests/225/accounting-sync", json=clear)
        ).status_code == 204
        assert await _state(api) != before
        assert (await admin.post("/__admin/reset")).status_code == 204
        assert await _state(api) == before
        assert await _state(api, 225) == synced_225


async def test_reset_refills_an_emptied_bucket(tmp_path: Path, database_url: str) -> None:
    settings = make_settings(tmp_path, database_url=database_url, sandbox=True, burst=3)
    async with running_app(settings) as app:
        transport = httpx.ASGITransport(app=app)
        async with (
            httpx.AsyncClient(transport=transport, base_url="http://x",
                              headers={"X-API-TOKEN": TOKENS["account1"]}) as api,
            httpx.AsyncClient(transport=transport, base_url="http://x",
                              headers={"X-API-TOKEN": OPERATOR_TOKEN}) as admin,
        ):  # fmt: skip
            statuses = [(await api.get("/fulfillment-requests/221")).status_code for _ in range(4)]
            assert statuses == [200, 200, 200, 429]
            assert (await admin.post("/__admin/reset")).status_code == 204
            again = await api.get("/fulfillment-requests/221")
    assert again.status_code == 200 and again.headers["x-auth-pool-used"] == "1"


async def test_reset_clears_rules_and_journal_and_keeps_other_tokens(
    admin: httpx.AsyncClient, connect: Connect
) -> None:
    await add_rule(admin, match={"method": "DELETE"}, action={"status": 500})
    async with connect(TOKENS["account1"]) as api:
        await api.get("/fulfillment-requests/221")
        assert (await admin.post("/__admin/reset")).status_code == 204
        assert (await admin.get("/__admin/faults")).json() == []
        assert (await admin.get("/__admin/requests")).json() == []
        assert (await api.get("/fulfillment-requests/221")).status_code == 200


async def test_reset_removes_tenants_and_revokes_their_tokens(
    admin: httpx.AsyncClient, connect: Connect, sandbox_settings: Settings
) -> None:
    tenant = (await admin.post("/__admin/tenants", json={"fulfillmentRequests": 2})).json()
    fr_id = tenant["fulfillmentRequestIds"][0]
    async with connect(tenant["tokens"]["account"]) as api:
        assert (await api.get(f"/fulfillment-requests/{fr_id}")).status_code == 200
        assert (await admin.post("/__admin/reset")).status_code == 204
    # A new app, so no token cache remembers the tenant's token.
    async with running_app(sandbox_settings, fixture=None) as fresh:
        transport = httpx.ASGITransport(app=fresh)
        headers = {"X-API-TOKEN": tenant["tokens"]["account"]}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://x", headers=headers
        ) as c:
            problem(await c.get(f"/fulfillment-requests/{fr_id}"), 401)
        headers = {"X-API-TOKEN": TOKENS["account1"]}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://x", headers=headers
        ) as c:
            assert (await c.get(f"/fulfillment-requests/{fr_id}")).status_code == 404
    assert (await admin.delete(f"/__admin/tenants/{tenant['accountId']}")).status_code == 204


async def test_tenant_has_its_own_account_frs_items_and_tokens(
    admin: httpx.AsyncClient, connect: Connect
) -> None:
    response = await admin.post(
        "/__admin/tenants", json={"fulfillmentRequests": 3, "itemsPerRequest": 4}
    )
    assert response.status_code == 201
    tenant = response.json()
    assert set(tenant) == {
        "accountId", "sourceId", "channelId", "tokens", "tokenIds", "fulfillmentRequestIds"
    }  # fmt: skip
    assert set(tenant["tokens"]) == set(tenant["tokenIds"]) == {"account", "source", "channel"}
    assert len(tenant["fulfillmentRequestIds"]) == 3
    for kind in ("account", "source", "channel"):
        async with connect(tenant["tokens"][kind]) as api:
            listed = (await api.get("/fulfillment-requests?filterPageSize=500")).json()
            assert [fr["id"] for fr in listed] == tenant["fulfillmentRequestIds"]
    fr = listed[0]
    assert fr["fulfillmentRequestStatus"] == {"name": "Processed"}
    assert fr["accountingSynced"] is None and fr["accountId"] == tenant["accountId"]
    assert fr["sourceId"] == tenant["sourceId"] and fr["channelId"] == tenant["channelId"]
    item_ids = [i["id"] for f in listed for i in f["fulfillmentRequestItems"]]
    assert len(item_ids) == len(set(item_ids)) == 12
    async with connect(tenant["tokens"]["account"]) as api:  # a tenant sees nothing else
        problem(await api.get("/fulfillment-requests/221"), 404)
        body = {
            "accountingSynced": True,
            "items": [{"id": item_ids[0], "externalAccountingItemId": "X"}],
        }
        assert (
            await api.patch(f"/fulfillment-requests/{fr['id']}/accounting-sync", json=body)
        ).status_code == 204
    async with connect(TOKENS["account1"]) as other:
        problem(await other.get(f"/fulfillment-requests/{fr['id']}"), 404)


async def test_default_tenant_has_ten_frs_of_two_items(admin: httpx.AsyncClient) -> None:
    tenant = (await admin.post("/__admin/tenants")).json()
    assert len(tenant["fulfillmentRequestIds"]) == 10


async def test_deleting_a_tenant_is_idempotent_and_ids_are_never_reused(
    admin: httpx.AsyncClient, connect: Connect
) -> None:
    first = (await admin.post("/__admin/tenants", json={"fulfillmentRequests": 1})).json()
    assert (await admin.delete(f"/__admin/tenants/{first['accountId']}")).status_code == 204
    assert (await admin.delete(f"/__admin/tenants/{first['accountId']}")).status_code == 204
    second = (await admin.post("/__admin/tenants", json={"fulfillmentRequests": 1})).json()
    assert second["accountId"] > max(first["fulfillmentRequestIds"])
    assert not set(second["fulfillmentRequestIds"]) & set(first["fulfillmentRequestIds"])
    assert (await admin.post("/__admin/reset")).status_code == 204
    third = (await admin.post("/__admin/tenants", json={"fulfillmentRequests": 1})).json()
    assert third["accountId"] > max(second["fulfillmentRequestIds"])


@pytest.mark.parametrize("size", [1, 10_000])
async def test_tenant_sizes_at_the_bounds_are_accepted(admin: httpx.AsyncClient, size: int) -> None:
    body = {"fulfillmentRequests": size, "itemsPerRequest": 1}
    tenant = (await admin.post("/__admin/tenants", json=body)).json()
    assert len(tenant["fulfillmentRequestIds"]) == size


async def test_database_loaded_before_sandbox_mode_existed_resets_to_its_state_at_upgrade(
    tmp_path: Path,
) -> None:
    from alembic import command

    from frsync.store import migrate
    from frsync.store.upgrade import alembic_config
    from frsync.tokens import hash_token

    path = tmp_path / "old.db"
    url = f"sqlite:///{path}"
    command.upgrade(alembic_config(url), "0002")
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO accounts VALUES (1, 'A')")
        db.execute("INSERT INTO sources VALUES (10, 1, 'S')")
        db.execute(
            "INSERT INTO fulfillment_requests (id, fulfillment_request_number, account_id,"
            " source_id, order_id, status, generated_at, updated_at, accounting_error)"
            " VALUES (221, 'FR-221', 1, 10, 1, 'Processed', 0, 0, 'old error')"
        )
        for token, kind, scope in (
            (TOKENS["account1"], "account", 1),
            (OPERATOR_TOKEN, "operator", 0),
        ):
            db.execute(
                "INSERT INTO api_tokens (token_hash, token_type, scope_id, created_at)"
                " VALUES (?, ?, ?, 0)",
                (hash_token(token), kind, scope),
            )
    migrate(url)
    settings = make_settings(tmp_path, database_url=url, sandbox=True)
    async with running_app(settings, fixture=None) as app:
        transport = httpx.ASGITransport(app=app)
        async with (
            httpx.AsyncClient(transport=transport, base_url="http://x",
                              headers={"X-API-TOKEN": TOKENS["account1"]}) as api,
            httpx.AsyncClient(transport=transport, base_url="http://x",
                              headers={"X-API-TOKEN": OPERATOR_TOKEN}) as admin,
        ):  # fmt: skip
            assert (await api.patch(PATCH_221, json={"accountingError": None})).status_code == 204
            assert (await admin.post("/__admin/reset")).status_code == 204
            fr = (await api.get("/fulfillment-requests/221")).json()
    assert fr["accountingError"] == "old error"


PURGE_STOPPED = "purging removed sandbox tenants stopped"


@pytest.mark.postgres
async def test_a_purge_that_finds_the_tables_busy_tries_again(
    tmp_path: Path, postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A reset or a load can hold the tables past the lock timeout; the purge waits a little
    and goes on, rather than leaving the rows until the next reset."""
    await reset_postgres(postgres_url)
    settings = make_settings(tmp_path, database_url=postgres_url, sandbox=True,
                             store_busy_timeout=0.2)  # fmt: skip
    async with running_app(settings) as app:
        transport = httpx.ASGITransport(app=app)
        admin = httpx.AsyncClient(transport=transport, base_url="http://s",
                                  headers={"X-API-TOKEN": OPERATOR_TOKEN})  # fmt: skip
        async with admin:
            tenant = (await admin.post("/__admin/tenants", json={})).json()
        holder = await asyncpg.connect(postgres_url)
        try:
            # The tenant, removed as a reset removes it, with the tables held meanwhile.
            await holder.execute("DELETE FROM sandbox_tenants WHERE account_id = $1",
                                 tenant["accountId"])  # fmt: skip
            lock = holder.transaction()
            await lock.start()
            await holder.execute("LOCK TABLE fulfillment_request_accounting IN EXCLUSIVE MODE")
            app.state.sandbox_purger.kick()
            await until(lambda: "lock timeout" in caplog.text, "the purge found them busy", 30)
            await lock.rollback()
            await asyncio.wait_for(app.state.sandbox_purger.wait(), 60)
            left = await holder.fetchval("SELECT count(*) FROM accounts WHERE id = $1",
                                         tenant["accountId"])  # fmt: skip
        finally:
            await holder.close()
    assert left == 0
    assert PURGE_STOPPED not in caplog.text


async def test_the_largest_tenant_after_a_smaller_one_is_made_counted_and_removed(
    admin: httpx.AsyncClient, connect: Connect
) -> None:
    """A tenant's FRs go in one statement, and their kept counts with them (store/schema.py);
    on PostgreSQL a large one is analyzed at once (sandbox/store_postgres.py)."""
    for size in (1_000, 10_000):
        response = await admin.post("/__admin/tenants", json={"fulfillmentRequests": size})
        assert response.status_code == 201, response.text
        tenant = response.json()
        for kind in ("account", "source", "channel"):
            async with connect(tenant["tokens"][kind]) as api:
                assert (await api.get("/fulfillment-requests/count")).json() == {"count": size}
                page = await api.get(
                    "/fulfillment-requests",
                    params={"filterPageNumber": size // 7, "filterPageSize": 7},
                )  # the last full page, read from the end
                first = size // 7 * 7 - 7
                assert [fr["id"] for fr in page.json()] == tenant["fulfillmentRequestIds"][
                    first : first + 7
                ]
        removed = await admin.delete(f"/__admin/tenants/{tenant['accountId']}")
        assert removed.status_code == 204
