"""The console obeys the token's rate limit and bounds its sessions (SPEC §4, §10), on both
stores, through the real HTTP stack. The limiter's clock is frozen, so a bucket never
refills during a test: the counts are exact whatever the machine's speed."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette

from frsync.config import Settings
from tests.conftest import client_for
from tests.console.conftest import CSRF, console_client, sign_in
from tests.support import OPERATOR_TOKEN, TOKENS, running_app

BURST = 40  # the default bucket


@pytest.fixture
async def frozen(settings: Settings) -> AsyncIterator[Starlette]:
    """The app with a clock that never moves: spent requests never come back."""
    async with running_app(settings, clock=lambda: 1000.0) as app:
        yield app


async def _spend_until_refused(client: httpx.AsyncClient, path: str) -> tuple[int, httpx.Response]:
    """GET `path` until an answer is 429: (answers before it, the 429)."""
    for admitted in range(BURST + 5):
        answer = await client.get(path)
        if answer.status_code == 429:
            return admitted, answer
        assert answer.status_code == 200, answer.text
    raise AssertionError(f"{path} never refused after {BURST + 5} requests")


async def test_console_reads_spend_the_tokens_own_bucket(frozen: Starlette) -> None:
    async with console_client(frozen) as console, client_for(frozen, TOKENS["account1"]) as api:
        assert (await api.get("/fulfillment-requests/221")).status_code == 200  # 1 spent
        assert (await sign_in(console, TOKENS["account1"])).status_code == 303  # 1 more
        admitted, refused = await _spend_until_refused(console, "/console/errors?message=x")
        assert admitted == BURST - 2
        # The page says so, in the console's frame, and when to come back.
        assert "Over the rate limit" in refused.text and "Sign out" in refused.text
        assert int(refused.headers["retry-after"]) >= 1
        # One bucket: the API is refused too, and so are every page and the live fragment.
        assert (await api.get("/fulfillment-requests/221")).status_code == 429
        for path in ("/console", "/console/fulfillment-request?q=221", "/console/errors"):
            assert (await console.get(path)).status_code == 429, path
        live = await console.get("/console/live")
        assert live.status_code == 429 and "rate limit" in live.text
        assert live.headers["content-type"].startswith("text/plain")
        assert int(live.headers["retry-after"]) >= 1


async def test_another_tokens_bucket_is_untouched(frozen: Starlette) -> None:
    async with console_client(frozen) as console:
        await sign_in(console, TOKENS["account1"])
        await _spend_until_refused(console, "/console")
    async with client_for(frozen, TOKENS["account2"]) as api:
        assert (await api.get("/fulfillment-requests/count")).status_code == 200


async def test_an_operator_session_spends_the_operator_tokens_bucket(frozen: Starlette) -> None:
    async with console_client(frozen) as console:
        assert (await sign_in(console, OPERATOR_TOKEN)).status_code == 303
        admitted, refused = await _spend_until_refused(console, "/console/tokens")
        assert admitted == BURST - 1
        assert "Over the rate limit" in refused.text


async def test_sign_ins_count_against_the_tokens_bucket(frozen: Starlette) -> None:
    answers = []
    for _ in range(BURST + 1):
        async with console_client(frozen) as browser:  # a new browser each time: no session
            answers.append(await sign_in(browser, TOKENS["channel20"]))
    assert [a.status_code for a in answers] == [303] * BURST + [429]
    assert "over its rate limit" in answers[-1].text
    assert int(answers[-1].headers["retry-after"]) >= 1
    assert CSRF.search(answers[-1].text)  # the form again, ready for a later try


async def test_a_token_keeps_its_ten_newest_sessions(frozen: Starlette) -> None:
    browsers = [console_client(frozen) for _ in range(11)]
    try:
        for browser in browsers:
            assert (await sign_in(browser, TOKENS["source10"])).status_code == 303
        pages = [await browser.get("/console") for browser in browsers]
    finally:
        for browser in browsers:
            await browser.aclose()
    assert 'name="token"' in pages[0].text and "Sign out" not in pages[0].text  # ended
    assert all("Sign out" in page.text for page in pages[1:])  # the ten newest live on


@pytest.mark.parametrize("text", ["0221", "+221", "２２１", "٢٢١", "221.0"])
async def test_console_pages_read_integers_by_the_apis_rule(frozen: Starlette, text: str) -> None:
    async with console_client(frozen) as console:
        await sign_in(console, TOKENS["account1"])
        assert (await console.get("/console/fulfillment-request?q=221")).status_code == 200
        found = await console.get("/console/fulfillment-request", params={"q": text})
        assert found.status_code == 404, text  # not an id (and no FR has that number)
        # A history cursor that is not a canonical integer is refused, never read as another
        # number (SPEC §5): the console's own 400 page, which names the parameter.
        page = await console.get(
            "/console/fulfillment-request", params={"q": "221", "before": text}
        )
        assert page.status_code == 400 and "<code>before</code>" in page.text
