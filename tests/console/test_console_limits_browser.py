"""In Chromium: a console page over the token's rate limit says so, and the Overview's live
refresh, meeting the limit, says when it will try again instead of failing."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.console.conftest import browser_sign_in, screenshot
from tests.support import TOKENS

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@contextmanager
def _bucket_kept_empty(server: str, token: str) -> Iterator[None]:
    """API requests with `token` while the block runs: at once while they are admitted, then
    every 50 ms (it refills at 2/s), so the bucket stays empty however busy the machine."""
    done = threading.Event()

    def drain() -> None:
        with httpx.Client(base_url=server, headers={"X-API-TOKEN": token}) as api:
            while not done.is_set():
                if api.get("/fulfillment-requests/count").status_code == 429:
                    done.wait(0.05)

    thread = threading.Thread(target=drain, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join(10)


def test_the_live_refresh_backs_off_and_a_page_says_why(page: Any, server: str) -> None:
    browser_sign_in(page, TOKENS["account1"])
    with _bucket_kept_empty(server, TOKENS["account1"]):
        status = page.locator("#live-status")
        expect(status).to_contain_text("Over this token's rate limit", timeout=40_000)
        expect(status).to_contain_text("next update in")
        expect(page.locator("#count-synced")).to_be_visible()  # the last numbers stay shown
        screenshot(page, "overview-over-limit", full_page=False)
        # A refill can land between the drain's requests: a page load may win one token, so
        # the property is that loads meet the limit page, not that the first one does.
        over = page.get_by_role("heading", name="Over the rate limit")
        for _ in range(10):
            page.goto("/console/errors")
            if over.count():
                break
        expect(over).to_be_visible()
        expect(page.get_by_role("button", name="Sign out")).to_be_visible()  # signed in
        screenshot(page, "errors-over-limit", full_page=False)
