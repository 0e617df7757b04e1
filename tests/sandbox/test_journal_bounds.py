"""The journal's bounds and redaction: each tenant keeps its last 1,000 entries whatever
another floods, bodies of requests without a valid token are never kept, and no token is
ever readable in it, whatever shape it was sent in."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import httpx
from starlette.applications import Starlette

from frsync.sandbox import sql as sandbox_sql
from frsync.sandbox.store import JournalEntry
from tests.sandbox.conftest import Connect
from tests.sandbox.helpers import PATCH_221, problem
from tests.support import OPERATOR_TOKEN, TOKENS


async def _tenant(admin: httpx.AsyncClient) -> dict[str, Any]:
    response = await admin.post("/__admin/tenants", json={"fulfillmentRequests": 2})
    assert response.status_code == 201
    tenant: dict[str, Any] = response.json()
    return tenant


async def _all_pages(admin: httpx.AsyncClient, url: str) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    before = ""
    while page := (await admin.get(f"{url}?limit=1000{before}")).json():
        entries += page
        before = f"&beforeId={page[-1]['id']}"
    return entries


def _flood_rows(account_id: int, count: int) -> list[tuple[Any, ...]]:
    entry = JournalEntry(0, "GET", "/fulfillment-requests/1", "", 200, 1.0, "r", 1, "account",
                         None, False, account_id, False, 300)  # fmt: skip
    row = (*(getattr(entry, column) for column in sandbox_sql.JOURNAL_COLUMNS), entry.size)
    return [row] * count


async def _bulk_insert(app: Starlette, rows: list[tuple[Any, ...]]) -> None:
    """Another tenant's flood, written straight into the journal table (20,000 HTTP calls
    would take minutes); the next recorded request then trims as usual."""
    statement = sandbox_sql.JOURNAL_INSERT.replace(" RETURNING id", "")
    store = app.state.store
    if store.kind == "sqlite":
        await store.transaction(lambda db: db.executemany(statement, rows))
    else:
        from frsync.sandbox.store_postgres import pg

        async with store.transaction() as connection:
            await connection.executemany(pg(statement), rows)


async def test_a_tenants_last_1000_entries_survive_another_tenants_flood(
    admin: httpx.AsyncClient, connect: Connect, sandbox_app: Starlette
) -> None:
    quiet, loud = await _tenant(admin), await _tenant(admin)
    quiet_fr = f"/fulfillment-requests/{quiet['fulfillmentRequestIds'][0]}"
    loud_fr = f"/fulfillment-requests/{loud['fulfillmentRequestIds'][0]}"
    async with connect(quiet["tokens"]["account"]) as api:
        for n in range(1_005):
            await api.get(f"{quiet_fr}?n={n}")
    await _bulk_insert(sandbox_app, _flood_rows(loud["accountId"], 19_700))
    async with connect(loud["tokens"]["account"]) as api:
        for _ in range(300):  # a real flood too, through the whole stack
            await api.get(loud_fr)
    kept = await _all_pages(admin, f"/__admin/tenants/{quiet['accountId']}/requests")
    assert [e["query"] for e in kept[:1_000]] == [f"n={n}" for n in range(1_004, 4, -1)]
    assert len(kept) <= 1_000 + sandbox_sql.JOURNAL_TRIM_EVERY  # trimmed every few entries
    flooded = await _all_pages(admin, f"/__admin/tenants/{loud['accountId']}/requests")
    assert 1_000 <= len(flooded) <= 1_000 + sandbox_sql.JOURNAL_TRIM_EVERY
    assert len({e["id"] for e in flooded}) == len(flooded)


async def test_unauthenticated_64_kib_bodies_are_not_kept(
    admin: httpx.AsyncClient, connect: Connect, sandbox_app: Starlette
) -> None:
    big = json.dumps({"accountingError": "x" * 65_500}).encode()
    assert len(big) < 64 * 1024
    async with connect("nope-this-is-not-a-token") as stranger:
        for _ in range(20):
            response = await stranger.patch(
                PATCH_221, content=big, headers={"Content-Type": "application/json"}
            )
            problem(response, 401)
    entries = (await admin.get("/__admin/requests")).json()
    assert len(entries) == 20
    assert all(e["body"] is None and e["bodyOmitted"] is True for e in entries)
    sizes = await _sizes(sandbox_app)
    assert max(sizes) < 1_000  # bytes held per entry: no body


async def _sizes(app: Starlette) -> list[int]:
    statement = "SELECT size FROM sandbox_journal"
    store = app.state.store
    if store.kind == "sqlite":
        rows = await store.read(lambda db: db.execute(statement).fetchall())
    else:
        async with store.acquire() as connection:
            rows = await connection.fetch(statement)
    return [row[0] for row in rows]


async def test_every_shape_of_a_token_is_redacted(
    admin: httpx.AsyncClient, connect: Connect
) -> None:
    tenant = await _tenant(admin)
    own, other = tenant["tokens"]["account"], TOKENS["account2"]
    fr = tenant["fulfillmentRequestIds"][0]
    async with connect(own) as api:
        await api.get(f"/fulfillment-requests?%74oken={own}&sinceId=1")
        await api.get(f"/fulfillment-requests?q={quote(other, safe='')}")
        await api.get(f"/fulfillment-requests/{other}")
        await api.get(f"/fulfillment-requests/{quote(OPERATOR_TOKEN, safe='')}/accounting-sync")
        await api.patch(
            f"/fulfillment-requests/{fr}/accounting-sync",
            json={"externalAccountingId": own, "items": [{"id": 1, "note": [{"deep": other}]}]},
        )
        await api.patch(f"/fulfillment-requests/{fr}/accounting-sync",
                        json={"externalAccountingId": TOKENS["source10"]})  # fmt: skip
    async with connect("nope-this-is-not-a-token") as stranger:
        await stranger.patch(PATCH_221, json={"token": TOKENS["account1"]})
    raw = (await admin.get("/__admin/requests")).text
    for secret in (own, other, OPERATOR_TOKEN, TOKENS["account1"], TOKENS["source10"]):
        assert secret not in raw
        assert quote(secret, safe="") not in raw
    entries = json.loads(raw)[::-1]
    assert entries[0]["query"] == "%74oken=[token]&sinceId=1"
    assert entries[1]["query"] == "q=[token]"
    assert entries[2]["path"] == "/fulfillment-requests/[token]"
    assert entries[3]["path"] == "/fulfillment-requests/[token]/accounting-sync"
    assert entries[4]["body"] == {
        "externalAccountingId": "[token]", "items": [{"id": 1, "note": [{"deep": "[token]"}]}]
    }  # fmt: skip
    assert entries[5]["body"] == {"externalAccountingId": "[token]"}
    assert entries[6]["body"] is None and entries[6]["bodyOmitted"] is True


async def test_strings_that_are_not_tokens_stay(admin: httpx.AsyncClient, connect: Connect) -> None:
    async with connect(TOKENS["account1"]) as api:
        body = {"externalAccountingId": TOKENS["account1"][:-1] + "Z"}
        await api.patch(PATCH_221, json=body)
    [entry] = (await admin.get("/__admin/requests")).json()
    assert entry["body"] == body
