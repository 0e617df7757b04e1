"""Console fixtures: an HTTP client that signs in, a real uvicorn server, and a real
browser (Debian's chromium driven by Playwright).

Browser tests skip when /usr/bin/chromium is missing, saying so; with
FRSYNC_REQUIRE_SERVICES=1 (as `.ci/run` sets, after installing chromium) they fail instead.
Screenshots of every view land in tests/console/screenshots/ (git-ignored) for a person to
look at.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from frsync.config import Settings
from tests.conftest import REQUIRE_SERVICES
from tests.support import BASIC_FIXTURE, load_fixture, uvicorn_thread

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).parent / "screenshots"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def console_client(app: Starlette, base_url: str = "http://testserver") -> httpx.AsyncClient:
    """A browser-like client on the in-process app (cookies kept, redirects not followed)."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url)


async def sign_in(client: httpx.AsyncClient, token: str) -> httpx.Response:
    """Fetch the form (for its CSRF pair), post the token; the answer to the post."""
    form = await client.get("/console")
    csrf = CSRF.search(form.text)
    assert csrf, form.text
    return await client.post("/console/sign-in", data={"csrf": csrf.group(1), "token": token})


def csrf_of(page: httpx.Response) -> str:
    found = CSRF.search(page.text)
    assert found
    return found.group(1)


@pytest.fixture
async def console(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    async with console_client(app) as client:
        yield client


# --- real server and browser ------------------------------------------------------------


@pytest.fixture
def server(settings: Settings) -> Iterator[str]:
    """The app under uvicorn on a free port, over the test database holding BASIC_FIXTURE."""
    # Playwright's sync API keeps an event loop running on this thread: load from another.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, load_fixture(settings, BASIC_FIXTURE)).result()
    with uvicorn_thread(settings) as port:
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")  # closed before other modules' asyncio tests run
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is not installed (apt-get install chromium; .ci/run does)"
        if REQUIRE_SERVICES:
            pytest.fail(f"browser tests are required (FRSYNC_REQUIRE_SERVICES=1) but {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Any, server: str) -> Iterator[Any]:
    """A fresh browser context (no cookies) on `server`; fails the test if the page asks
    any other origin for anything or breaks its Content Security Policy."""
    context = browser.new_context(base_url=server, viewport={"width": 1360, "height": 900})
    page = context.new_page()
    foreign: list[str] = []
    violations: list[str] = []
    page.on("request", lambda r: None if r.url.startswith(server) else foreign.append(r.url))
    page.on(
        "console", lambda m: violations.append(m.text) if "Content Security" in m.text else None
    )
    page.set_default_timeout(15_000)
    yield page
    context.close()
    assert foreign == [], f"requests to other origins: {foreign}"
    assert violations == [], f"CSP violations: {violations}"


def screenshot(page: Any, name: str, *, full_page: bool = True) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)


def browser_sign_in(page: Any, token: str) -> None:
    page.goto("/console")
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/console")
