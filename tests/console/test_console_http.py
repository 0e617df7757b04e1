"""The console through the real HTTP stack on every store: sessions, scope, CSRF, headers."""

from __future__ import annotations

import asyncio
import hashlib
import re
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from frsync.config import Settings
from frsync.console import usage
from frsync.console.overview import OverviewCache
from frsync.console.store import ConsoleStore
from frsync.domain import Principal
from frsync.errors import StoreBusy
from tests.conftest import client_for
from tests.console.conftest import CSRF, console_client, csrf_of, sign_in
from tests.support import OPERATOR_TOKEN, TOKENS, fixture_copy, running_app

COUNT = "/fulfillment-requests/count"


def _count_on_page(html: str, name: str) -> int:
    found = re.search(rf'id="count-{name}">([\d,]+)<', html)
    assert found, html
    return int(found.group(1).replace(",", ""))


def _cookie_headers(response: httpx.Response) -> list[str]:
    return response.headers.get_list("set-cookie")


@pytest.mark.parametrize(
    ("token", "scope_text"),
    [
        (TOKENS["account1"], "account 1 · Acme Outdoor"),
        (TOKENS["source10"], "source 10 · Trailhead Supply"),
        (TOKENS["channel20"], "channel 20 · Acme Shopify"),
        (OPERATOR_TOKEN, "every account"),
    ],
)
async def test_sign_in_with_each_token_type_shows_its_scope(
    console: httpx.AsyncClient, token: str, scope_text: str
) -> None:
    answer = await sign_in(console, token)
    assert answer.status_code == 303 and answer.headers["location"] == "/console"
    page = await console.get("/console")
    assert page.status_code == 200
    assert scope_text in page.text
    assert "Sign out" in page.text


@pytest.mark.parametrize("who", ["account1", "source10", "channel20", "account2"])
async def test_overview_counts_equal_the_count_endpoint(
    app: Starlette, console: httpx.AsyncClient, who: str
) -> None:
    await sign_in(console, TOKENS[who])
    page = (await console.get("/console")).text
    async with client_for(app, TOKENS[who]) as api:
        for name, query in [
            ("synced", {"filterAccountingSynced": "true"}),
            ("not-synced", {"filterAccountingSynced": "false"}),
            ("with-error", {"filterHasAccountingError": "true"}),
        ]:
            expected = (await api.get(COUNT, params=query)).json()["count"]
            assert _count_on_page(page, name) == expected, name


async def test_operator_overview_counts_every_account(console: httpx.AsyncClient) -> None:
    await sign_in(console, OPERATOR_TOKEN)
    page = (await console.get("/console")).text
    # BASIC_FIXTURE: 10 FRs; 225 synced; 226 has an error ("" on 227 is no error).
    assert _count_on_page(page, "synced") == 1
    assert _count_on_page(page, "not-synced") == 9
    assert _count_on_page(page, "with-error") == 1
    assert "Vendor not mapped" in page


async def test_session_cookie_flags_and_it_never_holds_the_token(
    console: httpx.AsyncClient,
) -> None:
    answer = await sign_in(console, TOKENS["account1"])
    cookie = next(c for c in _cookie_headers(answer) if c.startswith("frsync_console="))
    flags = [part.strip().lower() for part in cookie.split(";")]
    assert "httponly" in flags and "samesite=strict" in flags and "path=/console" in flags
    assert any(f.startswith("max-age=") and int(f.split("=")[1]) > 0 for f in flags)
    assert "secure" not in flags  # plain http: a Secure cookie would never come back
    value = cookie.split(";")[0].split("=", 1)[1]
    assert TOKENS["account1"] not in cookie and len(value) >= 40


async def test_session_cookie_is_secure_over_https(app: Starlette) -> None:
    async with console_client(app, "https://testserver") as client:
        answer = await sign_in(client, TOKENS["account1"])
    cookie = next(c for c in _cookie_headers(answer) if c.startswith("frsync_console="))
    assert "secure" in [part.strip().lower() for part in cookie.split(";")]


async def test_session_id_is_stored_only_as_its_hash(
    app: Starlette, console: httpx.AsyncClient
) -> None:
    await sign_in(console, TOKENS["account1"])
    session_id = console.cookies["frsync_console"]
    queries: ConsoleStore = app.state.console.queries
    digest = hashlib.sha256(session_id.encode()).digest()
    found = await queries.session_principal(digest, 0)
    assert found is not None and found.principal.token_type == "account"
    assert await queries.session_principal(session_id.encode()[:32], 0) is None


async def test_bad_token_is_refused_without_a_session(console: httpx.AsyncClient) -> None:
    answer = await sign_in(console, "not-a-real-token-0000000000")
    assert answer.status_code == 401
    assert "That token is not valid" in answer.text
    assert not any(c.startswith("frsync_console=") for c in _cookie_headers(answer))
    assert (await console.get("/console/errors")).status_code == 303


async def test_sign_in_without_the_form_token_is_refused(console: httpx.AsyncClient) -> None:
    await console.get("/console")
    answer = await console.post("/console/sign-in", data={"token": TOKENS["account1"]})
    assert answer.status_code == 403
    assert not any(c.startswith("frsync_console=") for c in _cookie_headers(answer))


async def test_sign_out_ends_the_session_on_the_server(console: httpx.AsyncClient) -> None:
    await sign_in(console, TOKENS["account1"])
    page = await console.get("/console")
    cookie = console.cookies["frsync_console"]
    answer = await console.post("/console/sign-out", data={"csrf": csrf_of(page)})
    assert answer.status_code == 303
    console.cookies.clear()
    console.cookies.set("frsync_console", cookie, path="/console")  # the old cookie, replayed
    replayed = await console.get("/console/errors")
    assert replayed.status_code == 303 and replayed.headers["location"] == "/console"
    assert "API token" in (await console.get("/console")).text


async def test_sign_out_without_the_csrf_token_keeps_the_session(
    console: httpx.AsyncClient,
) -> None:
    await sign_in(console, TOKENS["account1"])
    answer = await console.post("/console/sign-out", data={"csrf": "forged"})
    assert answer.status_code == 403
    assert (await console.get("/console/errors")).status_code == 200


async def test_revoking_the_token_ends_its_console_sessions(
    app: Starlette, console: httpx.AsyncClient
) -> None:
    await sign_in(console, TOKENS["source11"])
    assert (await console.get("/console/errors")).status_code == 200
    store = app.state.store
    token_id = next(t.id for t in await store.list_tokens() if t.scope_id == 11)
    assert await store.revoke_token(token_id)
    assert (await console.get("/console/errors")).status_code == 303


@pytest.mark.parametrize("query", ["301", "FR-301"])
async def test_scoped_token_never_finds_another_accounts_fr(
    console: httpx.AsyncClient, query: str
) -> None:
    await sign_in(console, TOKENS["account1"])
    other = await console.get("/console/fulfillment-request", params={"q": query})
    missing = await console.get("/console/fulfillment-request", params={"q": "FR-999999"})
    assert other.status_code == missing.status_code == 404
    # The random CSRF token may hold the query's digits: compared without it.
    assert CSRF.sub("", other.text).replace(query, "X") == CSRF.sub("", missing.text).replace(
        "FR-999999", "X"
    )
    assert "Birch" not in other.text and "30101" not in other.text


async def test_source_token_does_not_see_its_accounts_other_sources(
    console: httpx.AsyncClient,
) -> None:
    await sign_in(console, TOKENS["source11"])
    assert (await console.get("/console/fulfillment-request?q=221")).status_code == 404
    assert (await console.get("/console/fulfillment-request?q=222")).status_code == 200
    errors = await console.get("/console/errors")
    assert "Vendor not mapped" not in errors.text  # FR 226 belongs to source 10


async def test_fr_page_shows_fields_items_and_history(
    app: Starlette, console: httpx.AsyncClient
) -> None:
    async with client_for(app, TOKENS["source10"]) as api:
        body = {"accountingSynced": True, "externalAccountingId": "PO-221",
                "items": [{"id": 12312, "externalAccountingItemId": "PO-221-1"}]}  # fmt: skip
        assert (
            await api.patch("/fulfillment-requests/221/accounting-sync", json=body)
        ).status_code == 204
    await sign_in(console, TOKENS["account1"])
    page = await console.get("/console/fulfillment-request", params={"q": "FR-221"})
    assert page.status_code == 200
    text = page.text
    assert "FR-221" in text and "12313" in text and "SKU-12312" in text
    assert '"PO-221-1"' in text  # the item's external id
    source10_id = 3  # tokens are numbered in fixture order
    assert f"token #{source10_id} (source)" in text
    assert re.search(
        r"accountingSynced</span>\s*<span class=\"none\">null</span>\s*<span class=\"arrow\">→</span>\s*true",
        text,
    )
    assert "item 12312 externalAccountingItemId" in text


async def test_errors_view_lists_newest_first_and_pages(
    app: Starlette, console: httpx.AsyncClient
) -> None:
    async with client_for(app, TOKENS["account1"]) as api:
        for fr_id in (221, 222, 223):
            body = {"accountingSynced": False, "accountingError": f"Failure on {fr_id}"}
            answer = await api.patch(f"/fulfillment-requests/{fr_id}/accounting-sync", json=body)
            assert answer.status_code == 204
            await asyncio.sleep(0.002)  # distinct updatedAt
    await sign_in(console, TOKENS["account1"])
    text = (await console.get("/console/errors")).text
    positions = [text.index(f"Failure on {i}") for i in (223, 222, 221)]
    assert positions == sorted(positions)
    assert text.index("Failure on 221") < text.index("Vendor not mapped")
    assert "Birch" not in text


async def test_tokens_view_is_for_operators_only(console: httpx.AsyncClient) -> None:
    await sign_in(console, TOKENS["account1"])
    assert 'href="/console/tokens"' not in (await console.get("/console")).text
    assert (await console.get("/console/tokens")).status_code == 404


async def test_tokens_view_shows_usage_from_the_api(
    app: Starlette, console: httpx.AsyncClient
) -> None:
    async with client_for(app, TOKENS["channel40"]) as api:
        for _ in range(3):
            assert (await api.get("/fulfillment-requests/301")).status_code == 200
    await app.state.usage.flush(app.state.console.queries)
    await sign_in(console, OPERATOR_TOKEN)
    page = await console.get("/console/tokens")
    assert page.status_code == 200
    row = re.search(r'<tr class="" data-token-id="6">(.*?)</tr>', page.text, re.S)
    assert row, page.text
    cells = row.group(1)
    assert "channel 40 · Birch Etsy" in cells
    assert re.search(r'data-usage="requests">3<', cells)
    assert re.search(r'data-usage="rate-limited">0<', cells)
    assert "never" not in cells  # last used is set
    assert "platform team" in page.text  # the operator token's label


async def test_usage_counts_429s_and_sums_flushes(app: Starlette) -> None:
    queries: ConsoleStore = app.state.console.queries
    recorder = app.state.usage
    for limited in (False, False, True):
        recorder.record(1, limited)
    await recorder.flush(queries)
    recorder.record(1, True)
    await recorder.flush(queries)
    (row,) = [r for r in await queries.tokens_page(0, 100, 0) if r.id == 1]
    assert (row.requests, row.rate_limited) == (4, 2)
    assert row.last_used_at is not None


async def test_a_flush_that_fails_midway_keeps_exactly_what_it_did_not_write(
    app: Starlette, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A flush writes a few tokens per transaction (a short hold of SQLite's write lock); one
    that fails after some of them were written keeps the rest for the next flush, and
    neither loses nor counts twice."""
    queries: ConsoleStore = app.state.console.queries
    recorder = app.state.usage
    monkeypatch.setattr(usage, "TOKENS_PER_WRITE", 1)
    for token_id, times in ((1, 2), (2, 3), (3, 1)):
        for n in range(times):
            recorder.record(token_id, rate_limited=n == 1)  # a 429 for tokens 1 and 2

    class FailsSecondWrite:
        writes = 0

        async def add_usage(self, *args: Any) -> None:
            self.writes += 1
            if self.writes == 2:
                raise StoreBusy()
            await queries.add_usage(*args)

    with pytest.raises(StoreBusy):
        await recorder.flush(FailsSecondWrite())
    await recorder.flush(queries)
    found = {
        r.id: (r.requests, r.rate_limited)
        for r in await queries.tokens_page(0, 100, 0)
        if r.id in (1, 2, 3)
    }
    assert found == {1: (2, 1), 2: (3, 1), 3: (1, 0)}


@pytest.mark.parametrize("path", ["/console", "/console/errors", "/docs"])
async def test_pages_forbid_framing_and_other_origins(
    console: httpx.AsyncClient, path: str
) -> None:
    await sign_in(console, TOKENS["account1"])
    answer = await console.get(path)
    assert answer.status_code == 200
    csp = answer.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "http" not in csp  # no other origin is named
    assert answer.headers["x-frame-options"] == "DENY"


async def test_live_fragment_without_a_session_is_401(console: httpx.AsyncClient) -> None:
    answer = await console.get("/console/live")
    assert answer.status_code == 401


async def test_docs_serves_swagger_ui_5_from_the_package(console: httpx.AsyncClient) -> None:
    page = await console.get("/docs")
    assert page.status_code == 200
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources and all(s.startswith("/") for s in sources)
    bundle = await console.get("/docs/assets/swagger-ui-bundle.js")
    assert bundle.status_code == 200 and len(bundle.content) > 500_000
    assert (await console.get("/docs/assets/swagger-editor.js")).status_code == 404
    assert (await console.get("/docs/assets/..%2F..%2Fcore.py")).status_code == 404


@pytest.mark.parametrize("who", ["account1", "source10", "channel20", "operator"])
async def test_syncs_per_hour_counts_synced_and_failed_apart(
    app: Starlette, console: httpx.AsyncClient, who: str
) -> None:
    bodies = {
        221: {"accountingSynced": True, "externalAccountingId": "PO-221"},  # synced
        222: {"accountingSynced": False, "accountingError": "Tax code missing"},  # failed
        223: {"externalAccountingId": "PO-223"},  # changed something: a sync too
    }
    async with client_for(app, TOKENS["account1"]) as api:
        for fr_id, body in [*bodies.items(), (221, bodies[221])]:  # the last changes nothing
            answer = await api.patch(f"/fulfillment-requests/{fr_id}/accounting-sync", json=body)
            assert answer.status_code == 204
    await sign_in(console, OPERATOR_TOKEN if who == "operator" else TOKENS[who])
    label = re.search(r'aria-label="Accounting syncs per hour[^"]*: (\d+) synced, (\d+) failed"',
                      (await console.get("/console")).text)  # fmt: skip
    assert label
    # source 10 holds 221 and 223; channel 20 holds 221 and 222.
    expected = {"account1": (2, 1), "source10": (2, 0), "channel20": (1, 1), "operator": (2, 1)}
    assert (int(label.group(1)), int(label.group(2))) == expected[who]


async def test_error_messages_are_escaped_and_stay_in_their_scope(
    app: Starlette, console: httpx.AsyncClient
) -> None:
    hostile = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    async with client_for(app, TOKENS["account2"]) as api:
        body = {"accountingSynced": False, "accountingError": hostile}
        assert (
            await api.patch("/fulfillment-requests/301/accounting-sync", json=body)
        ).status_code == 204
    await sign_in(console, TOKENS["account2"])
    for path in (
        "/console",
        "/console/live",
        "/console/errors",
        "/console/fulfillment-request?q=301",
    ):
        text = (await console.get(path)).text
        assert "<script>alert" not in text and "<img src=x" not in text, path
        assert "&lt;script&gt;" in text, path
        assert "Vendor not mapped" not in text, path  # account 1's error


async def test_errors_view_pages_through_every_error_once(settings: Settings) -> None:
    fixture = fixture_copy()
    for n in range(120):
        fixture["fulfillmentRequests"].append({
            "id": 5000 + n, "accountId": 1, "sourceId": 10, "channelId": 20, "orderId": 9000 + n,
            "fulfillmentRequestNumber": f"FR-E{n:03d}", "status": "Processed",
            "generatedAt": "2026-11-20T10:00:00.000Z",
            "updatedAt": f"2026-11-21T10:{n // 60:02d}:{n % 60:02d}.000Z",
            "accountingSynced": False, "accountingError": f"Error number {n:03d}",
        })  # fmt: skip
    async with running_app(settings, fixture) as app, console_client(app) as console:
        await sign_in(console, TOKENS["account1"])
        seen: list[str] = []
        url: str | None = "/console/errors"
        while url is not None:
            page = (await console.get(url)).text
            seen += re.findall(r"Error number (\d{3})", page)
            older = re.search(r'href="(/console/errors\?before=[^"]+)" rel="next"', page)
            url = older.group(1) if older else None
        assert seen == [f"{n:03d}" for n in range(119, -1, -1)]  # newest first, each once
        assert "121</strong> fulfillment requests with an accounting error" in page


async def test_overview_cache_serves_recent_numbers_and_refreshes_behind(app: Starlette) -> None:
    now = [1000.0]
    cache = OverviewCache(clock=lambda: now[0])
    queries: ConsoleStore = app.state.console.queries
    account1 = Principal(1, "account", 1)
    assert (await cache.get(queries, account1)).with_error == 1
    async with client_for(app, TOKENS["account1"]) as api:
        body = {"accountingSynced": False, "accountingError": "Tax code missing"}
        assert (
            await api.patch("/fulfillment-requests/222/accounting-sync", json=body)
        ).status_code == 204
    now[0] += 1  # fresh: served as kept
    assert (await cache.get(queries, account1)).with_error == 1
    now[0] += 2  # stale but recent: served as kept, refreshed behind
    assert (await cache.get(queries, account1)).with_error == 1
    for _ in range(3000):  # up to 30 s: the refresh runs behind, at the machine's pace
        await asyncio.sleep(0.01)
        if (await cache.get(queries, account1)).with_error == 2:
            break
    assert (await cache.get(queries, account1)).with_error == 2
    async with client_for(app, TOKENS["account1"]) as api:
        body = {"accountingSynced": False, "accountingError": "Another"}
        assert (
            await api.patch("/fulfillment-requests/223/accounting-sync", json=body)
        ).status_code == 204
    now[0] += 60  # too old to show: computed before the answer
    assert (await cache.get(queries, account1)).with_error == 3
    await cache.close()


async def test_guessing_tokens_at_the_sign_in_form_is_slowed_down(
    console: httpx.AsyncClient,
) -> None:
    answers = [await sign_in(console, f"guess-{n:04d}-xxxxxxxxxxxxxxxx") for n in range(25)]
    assert {a.status_code for a in answers[:20]} == {401}  # the per-address burst
    assert answers[-1].status_code == 429
    assert "Too many sign-in attempts" in answers[-1].text
    # As on the API, the limit is on bad tokens: a valid one still signs in.
    assert (await sign_in(console, TOKENS["account1"])).status_code == 303


async def test_a_top_error_opens_the_frs_with_that_message(
    app: Starlette, console: httpx.AsyncClient
) -> None:
    message = "Tax code missing & more <here>"
    async with client_for(app, TOKENS["account1"]) as api:
        for fr_id in (222, 223):
            body = {"accountingSynced": False, "accountingError": message}
            answer = await api.patch(f"/fulfillment-requests/{fr_id}/accounting-sync", json=body)
            assert answer.status_code == 204
    await sign_in(console, TOKENS["account1"])
    overview = (await console.get("/console")).text
    link = re.search(r'href="(/console/errors\?message=[^"]+)"[^>]*>Tax code', overview)
    assert link, overview
    page = await console.get(link.group(1).replace("&amp;", "&"))
    assert page.status_code == 200
    assert "FR-222" in page.text and "FR-223" in page.text
    assert "FR-226" not in page.text  # "Vendor not mapped" is another message
    assert '<strong class="error-text">2</strong> fulfillment requests with this' in page.text
