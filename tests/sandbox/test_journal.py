"""The request journal: what it records, in what order, how it filters, what it never holds."""

from __future__ import annotations

import json

import httpx
import pytest

from frsync.config import Settings
from frsync.sandbox import sql as sandbox_sql
from tests.sandbox.conftest import Connect
from tests.sandbox.helpers import PATCH_221, SYNCED, add_rule
from tests.support import OPERATOR_TOKEN, TOKENS, running_app

FIELDS = {"id", "accountId", "at", "method", "path", "query", "status", "durationMs",
          "requestId", "tokenId", "tokenType", "body"}  # fmt: skip


async def _journal(admin: httpx.AsyncClient, query: str = "") -> list[dict[str, object]]:
    response = await admin.get(f"/__admin/requests{query}")
    assert response.status_code == 200, response.text
    entries: list[dict[str, object]] = response.json()
    return entries


async def test_journal_records_fr_requests_newest_first_with_their_bodies(
    admin: httpx.AsyncClient, connect: Connect
) -> None:
    async with connect(TOKENS["account1"]) as api:
        patched = await api.patch(PATCH_221, json=SYNCED)
        listed = await api.get("/fulfillment-requests?filterPageSize=5&sinceId=1")
    newest, oldest = await _journal(admin)
    assert set(newest) == set(oldest) == FIELDS
    assert oldest["method"] == "PATCH" and oldest["path"] == PATCH_221
    assert oldest["status"] == 204 and oldest["body"] == SYNCED
    assert oldest["requestId"] == patched.headers["x-request-id"]
    assert oldest["tokenType"] == "account" and isinstance(oldest["tokenId"], int)
    assert oldest["accountId"] == newest["accountId"] == 1
    assert newest["query"] == "filterPageSize=5&sinceId=1" and newest["body"] is None
    assert newest["requestId"] == listed.headers["x-request-id"]
    assert isinstance(newest["durationMs"], float) and newest["at"].endswith("Z")  # type: ignore[union-attr]
    assert oldest["id"] < newest["id"]  # type: ignore[operator]


async def test_journal_never_holds_a_token(admin: httpx.AsyncClient, connect: Connect) -> None:
    async with connect(TOKENS["account1"]) as api:
        await api.patch(PATCH_221, json={"externalAccountingId": TOKENS["source10"][:5]})
    async with connect("a-token-that-does-not-exist-123") as stranger:
        await stranger.get("/fulfillment-requests/221")
    async with connect(TOKENS["account1"]) as api:  # a token where none belongs, still kept out
        await api.get(f"/fulfillment-requests?X-API-TOKEN={TOKENS['account2']}&sinceId=1")
    raw = (await admin.get("/__admin/requests")).text
    for secret in (TOKENS["account1"], TOKENS["account2"], OPERATOR_TOKEN,
                   "a-token-that-does-not-exist-123"):  # fmt: skip
        assert secret not in raw
    entries = json.loads(raw)
    assert entries[0]["query"] == "X-API-TOKEN=[token]&sinceId=1"
    assert entries[1]["status"] == 401 and entries[1]["tokenId"] is None
    assert entries[1]["accountId"] is None


async def test_journal_has_the_body_when_a_forced_answer_came_first(
    admin: httpx.AsyncClient, connect: Connect
) -> None:
    await add_rule(admin, action={"status": 503}, times=1)
    async with connect(TOKENS["account1"]) as api:
        await api.patch(PATCH_221, json=SYNCED)
    [entry] = await _journal(admin)
    assert entry["status"] == 503 and entry["body"] == SYNCED


@pytest.mark.parametrize(
    ("content", "expected"),
    [(b"not json", None), (b"", None), (b"[1, 2]", [1, 2])],
)
async def test_journal_body_is_null_unless_json(
    admin: httpx.AsyncClient, connect: Connect, content: bytes, expected: object
) -> None:
    async with connect(TOKENS["account1"]) as api:
        await api.patch(PATCH_221, content=content, headers={"Content-Type": "application/json"})
    [entry] = await _journal(admin)
    assert entry["body"] == expected and "bodyTruncated" not in entry


async def test_journal_body_over_64_kib_is_null_and_marked_truncated(
    admin: httpx.AsyncClient, connect: Connect
) -> None:
    big = {"accountingError": "x" * 70_000}
    async with connect(TOKENS["account1"]) as api:
        assert (await api.patch(PATCH_221, json=big)).status_code == 400  # over 4,000 chars
    [entry] = await _journal(admin)
    assert entry["body"] is None and entry["bodyTruncated"] is True


async def test_journal_skips_admin_health_and_metrics(
    admin: httpx.AsyncClient, connect: Connect
) -> None:
    async with connect() as anonymous:
        await anonymous.get("/healthz")
        await anonymous.get("/metrics")
    await admin.get("/__admin/faults")
    assert await _journal(admin) == []


async def test_journal_filters_and_limit(admin: httpx.AsyncClient, connect: Connect) -> None:
    async with connect(TOKENS["account1"]) as api:
        await api.patch(PATCH_221, json=SYNCED)
        await api.get("/fulfillment-requests/221")
        await api.get("/fulfillment-requests/222")
        await api.get("/fulfillment-requests/99999")
    async with connect(TOKENS["source10"]) as source:
        await source.get("/fulfillment-requests/221")
    everything = await _journal(admin)
    account_token = everything[-1]["tokenId"]
    assert [e["method"] for e in await _journal(admin, "?method=patch")] == ["PATCH"]
    assert len(await _journal(admin, "?path=/fulfillment-requests/221")) == 2
    assert len(await _journal(admin, "?path=/fulfillment-requests/22*")) == 4
    assert [e["status"] for e in await _journal(admin, "?status=404")] == [404]
    assert len(await _journal(admin, f"?tokenId={account_token}")) == 4
    assert [e["id"] for e in await _journal(admin, "?limit=2")] == [e["id"] for e in everything[:2]]
    assert len(await _journal(admin, "?method=GET&status=200&limit=1")) == 1


async def test_clearing_the_journal_empties_it(admin: httpx.AsyncClient, connect: Connect) -> None:
    async with connect(TOKENS["account1"]) as api:
        await api.get("/fulfillment-requests/221")
    assert (await admin.delete("/__admin/requests")).status_code == 204
    assert await _journal(admin) == []


async def test_journal_keeps_only_the_newest_entries(
    admin: httpx.AsyncClient, connect: Connect, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The bound is 10,000; a small one shows the rule without 10,000 requests.
    monkeypatch.setattr(sandbox_sql, "JOURNAL_KEEP", 3)
    monkeypatch.setattr(sandbox_sql, "JOURNAL_TRIM_EVERY", 1)
    async with connect(TOKENS["account1"]) as api:
        for fr_id in (221, 222, 223, 224, 225):
            await api.get(f"/fulfillment-requests/{fr_id}")
    paths = [e["path"] for e in await _journal(admin, "?limit=1000")]
    assert paths == [f"/fulfillment-requests/{i}" for i in (225, 224, 223)]


async def test_entry_is_in_the_shared_journal_when_the_answer_arrives(
    sandbox_settings: Settings, connect: Connect
) -> None:
    """Another app on the same database stands in for another worker: the entry is there
    the moment the answer is, for every request, with no wait."""
    async with running_app(sandbox_settings, fixture=None) as other_worker:
        transport = httpx.ASGITransport(app=other_worker)
        headers = {"X-API-TOKEN": OPERATOR_TOKEN}
        async with (
            httpx.AsyncClient(transport=transport, base_url="http://b", headers=headers) as admin,
            connect(TOKENS["account1"]) as api,
        ):
            for n in range(5):
                answer = await api.patch(PATCH_221, json={"externalAccountingId": f"QB-{n}"})
                [newest] = (await admin.get("/__admin/requests?limit=1")).json()
                assert newest["requestId"] == answer.headers["x-request-id"]
                assert newest["body"] == {"externalAccountingId": f"QB-{n}"}


async def test_a_patch_that_changes_nothing_is_journalled_but_leaves_no_history(
    admin: httpx.AsyncClient, connect: Connect
) -> None:
    """Issue 19 item 5: still a 204 and still in the journal, with no history entry."""
    async with connect(TOKENS["account1"]) as api:
        assert (await api.patch(PATCH_221, json=SYNCED)).status_code == 204
        again = await api.patch(PATCH_221, json=SYNCED)
        empty = await api.patch(PATCH_221, json={})
        history = (await api.get(f"{PATCH_221}/history")).json()
    assert again.status_code == empty.status_code == 204
    assert len(history) == 1
    journal = await _journal(admin, "?method=PATCH")
    assert [entry["requestId"] for entry in journal[:2]] == [
        empty.headers["x-request-id"],
        again.headers["x-request-id"],
    ]
