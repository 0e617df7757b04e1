"""The console and /docs in a real browser (Debian's chromium via Playwright) against a real
uvicorn server. Each view is saved as a screenshot under tests/console/screenshots/."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.console.conftest import browser_sign_in, screenshot
from tests.support import OPERATOR_TOKEN, TOKENS

# One store is enough in the browser: the HTTP tests run every store.
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def count(page: Any, name: str) -> int:
    return int(page.locator(f"#count-{name}").inner_text().replace(",", ""))


@pytest.mark.parametrize(
    ("who", "token", "scope"),
    [
        ("account", TOKENS["account1"], "account 1 · Acme Outdoor"),
        ("source", TOKENS["source10"], "source 10 · Trailhead Supply"),
        ("channel", TOKENS["channel20"], "channel 20 · Acme Shopify"),
        ("operator", OPERATOR_TOKEN, "every account"),
    ],
)
def test_sign_in_with_each_token_type(
    page: Any, server: str, who: str, token: str, scope: str
) -> None:
    browser_sign_in(page, token)
    expect(page.locator(".who")).to_contain_text(scope)
    expect(page.get_by_role("link", name="Errors")).to_be_visible()
    tokens_link = page.get_by_role("link", name="Tokens")
    expect(tokens_link).to_have_count(1 if who == "operator" else 0)
    with httpx.Client(base_url=server, headers={"X-API-TOKEN": token}) as api:
        if who != "operator":  # an operator token is refused by the API itself
            for name, query in [("synced", "filterAccountingSynced=true"),
                                ("not-synced", "filterAccountingSynced=false"),
                                ("with-error", "filterHasAccountingError=true")]:  # fmt: skip
                expected = api.get(f"/fulfillment-requests/count?{query}").json()["count"]
                assert count(page, name) == expected, name
    screenshot(page, f"overview-{who}")


def test_overview_refreshes_itself_after_a_patch(page: Any, server: str) -> None:
    browser_sign_in(page, TOKENS["account1"])
    before = count(page, "with-error")
    body = {"accountingSynced": False, "accountingError": "Tax code missing in QuickBooks"}
    with httpx.Client(base_url=server, headers={"X-API-TOKEN": TOKENS["account1"]}) as api:
        assert api.patch("/fulfillment-requests/222/accounting-sync", json=body).status_code == 204
    navigations: list[str] = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))
    expect(page.locator("#count-with-error")).to_have_text(
        str(before + 1), timeout=35_000
    )  # two 10 s refreshes: the first may bring the cached numbers
    expect(page.locator(".top-errors")).to_contain_text("Tax code missing in QuickBooks")
    assert "1 failed" in page.locator("#syncs-chart").get_attribute("aria-label")
    assert navigations == []  # refreshed in place, not reloaded
    screenshot(page, "overview-after-patch")


def test_live_toggle_pauses_the_refresh(page: Any, server: str) -> None:
    browser_sign_in(page, TOKENS["account1"])
    page.get_by_label("Live: refresh every 10 s").uncheck()
    expect(page.locator("#live-status")).to_have_text("Paused")
    before = count(page, "synced")
    with httpx.Client(base_url=server, headers={"X-API-TOKEN": TOKENS["account1"]}) as api:
        assert api.patch("/fulfillment-requests/223/accounting-sync",
                         json={"accountingSynced": True}).status_code == 204  # fmt: skip
    page.wait_for_timeout(12_000)  # longer than one refresh period
    assert count(page, "synced") == before
    page.get_by_label("Live: refresh every 10 s").check()
    expect(page.locator("#count-synced")).to_have_text(
        str(before + 1), timeout=35_000
    )  # two 10 s refreshes: the first may bring the cached numbers


def test_fr_search_by_number_shows_fields_items_and_history(page: Any, server: str) -> None:
    body = {"accountingSynced": True, "externalAccountingId": "BILL-221",
            "items": [{"id": 12312, "externalAccountingItemId": "BILL-221-1"}]}  # fmt: skip
    with httpx.Client(base_url=server, headers={"X-API-TOKEN": TOKENS["source10"]}) as api:
        assert api.patch("/fulfillment-requests/221/accounting-sync", json=body).status_code == 204
    browser_sign_in(page, TOKENS["account1"])
    page.get_by_label("Fulfillment request").fill("FR-221")
    page.get_by_role("button", name="Open").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("FR-221")
    expect(page.locator("#fr-fields")).to_contain_text("BILL-221")
    items = page.locator("#fr-items")
    expect(items).to_contain_text("12312")
    expect(items).to_contain_text("BILL-221-1")
    expect(items).to_contain_text("12313")
    history = page.locator("#fr-history > li")
    expect(history).to_have_count(1)
    expect(history.first).to_contain_text("token #3 (source)")
    expect(history.first).to_contain_text(re.compile(r"accountingSynced\s*null\s*→\s*true"))
    expect(history.first).to_contain_text(
        re.compile(r"externalAccountingId\s*null\s*→\s*\"BILL-221\"")
    )
    screenshot(page, "fr-221")


def test_fr_search_by_id_in_another_scope_is_not_found(page: Any, server: str) -> None:
    browser_sign_in(page, TOKENS["account1"])
    for query in ("301", "FR-301", "999999"):
        page.get_by_label("Fulfillment request").fill(query)
        page.get_by_role("button", name="Open").click()
        expect(page.get_by_role("heading", level=1)).to_have_text(
            f"Fulfillment request “{query}” not found"
        )
        expect(page.locator("main")).not_to_contain_text("Birch")
    screenshot(page, "fr-not-found")


def test_errors_view_lists_errors_with_links(page: Any, server: str) -> None:
    browser_sign_in(page, OPERATOR_TOKEN)
    page.get_by_role("link", name="Errors").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Errors")
    table = page.locator("#errors-table")
    expect(table).to_contain_text("Vendor not mapped")
    expect(table).to_contain_text("FR-226")
    screenshot(page, "errors")
    table.get_by_role("link", name="FR-226").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("FR-226")


def test_tokens_view_for_operators(page: Any, server: str) -> None:
    with httpx.Client(base_url=server, headers={"X-API-TOKEN": TOKENS["channel40"]}) as api:
        for _ in range(2):
            assert api.get("/fulfillment-requests/count").status_code == 200
    browser_sign_in(page, OPERATOR_TOKEN)
    page.get_by_role("link", name="Tokens").click()
    row = page.locator('tr[data-token-id="6"]')
    expect(row).to_contain_text("channel 40 · Birch Etsy")
    # Usage reaches the table within a flush (2 s); reload until it shows.
    for _ in range(10):
        if row.locator('[data-usage="requests"]').inner_text() == "2":
            break
        page.wait_for_timeout(1000)
        page.reload()
    expect(row.locator('[data-usage="requests"]')).to_have_text("2")
    expect(page.locator('tr[data-token-id="7"]')).to_contain_text("every account")
    screenshot(page, "tokens")


def test_tokens_view_is_hidden_from_scoped_tokens(page: Any, server: str) -> None:
    browser_sign_in(page, TOKENS["account2"])
    expect(page.get_by_role("link", name="Tokens")).to_have_count(0)
    response = page.goto("/console/tokens")
    assert response.status == 404


def test_bad_token_stays_on_the_sign_in_page(page: Any, server: str) -> None:
    page.goto("/console")
    page.get_by_label("API token").fill("definitely-not-a-token-xxxx")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("That token is not valid")
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    assert not [c for c in page.context.cookies() if c["name"] == "frsync_console"]
    screenshot(page, "sign-in-bad-token")


def test_cookie_flags_in_the_browser(page: Any, server: str) -> None:
    browser_sign_in(page, TOKENS["account1"])
    (cookie,) = [c for c in page.context.cookies() if c["name"] == "frsync_console"]
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert cookie["secure"] is False  # served over plain http here; https sets it
    assert cookie["expires"] > 0  # not a browser-session cookie: it expires
    assert TOKENS["account1"] not in cookie["value"]
    assert page.evaluate("document.cookie") == ""  # scripts cannot read it


def test_sign_out_ends_the_session_on_the_server(page: Any, server: str) -> None:
    browser_sign_in(page, TOKENS["account1"])
    (cookie,) = [c for c in page.context.cookies() if c["name"] == "frsync_console"]
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("status")).to_contain_text("You are signed out")
    screenshot(page, "signed-out")
    # Replay the old cookie: the server no longer knows the session.
    page.context.add_cookies([cookie])
    page.goto("/console/errors")
    expect(page.get_by_label("API token")).to_be_visible()


def test_docs_authorize_try_it_out_execute_answers_204(page: Any, server: str) -> None:
    page.goto("/docs")
    expect(page.locator(".swagger-ui .info .title")).to_be_visible()
    page.get_by_role("button", name="Authorize").first.click()
    page.locator(".auth-container input").fill(TOKENS["account1"])
    screenshot(page, "docs-authorize")
    dialog = page.locator(".modal-ux")
    dialog.get_by_role("button", name="Apply credentials").click()  # labelled "Authorize"
    expect(dialog.get_by_role("button", name="Remove authorization")).to_be_visible()
    dialog.get_by_role("button", name="Close").click()
    operation = page.locator(".opblock-patch").first
    operation.locator(".opblock-summary").click()
    operation.get_by_role("button", name="Try it out").click()
    operation.locator('input[placeholder="fulfillmentRequestId"]').fill("221")
    screenshot(page, "docs-try-it-out", full_page=False)
    operation.get_by_role("button", name="Execute").click()
    status = operation.locator(".live-responses-table tbody .response-col_status").first
    expect(status).to_have_text(re.compile(r"^\s*204"), timeout=15_000)
    status.scroll_into_view_if_needed()
    screenshot(page, "docs-executed", full_page=False)
    with httpx.Client(base_url=server, headers={"X-API-TOKEN": TOKENS["account1"]}) as api:
        fr = api.get("/fulfillment-requests/221").json()
    assert fr["accountingSynced"] is not None  # the example body really was applied
