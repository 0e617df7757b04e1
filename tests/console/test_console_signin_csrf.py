"""Login CSRF (issue 23 item 3): a page on another origin of the same site — another port of
this host — plants the sign-in cookie with `document.cookie` and auto-posts the sign-in form
with the attacker's token. The browser must not end up signed in. Over HTTP first (the
headers a browser sends), then in Chromium exactly as the probe did it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from frsync.console.sessions import SESSION_COOKIE, SIGN_IN_COOKIE
from tests.console.conftest import CSRF, console_client, screenshot
from tests.support import TOKENS

ATTACKER = TOKENS["channel40"]


async def _post_sign_in(console: httpx.AsyncClient, **headers: str) -> httpx.Response:
    form = await console.get("/console")
    csrf = CSRF.search(form.text)
    assert csrf
    body = {"csrf": csrf.group(1), "token": ATTACKER}
    return await console.post("/console/sign-in", data=body, headers=headers)


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "same-site"},  # another port of this host
        {"Sec-Fetch-Site": "cross-site"},
        {"Origin": "http://testserver:8081"},
        {"Origin": "http://evil.testserver"},
        {"Origin": "null"},  # and no Sec-Fetch-Site to vouch for it
        {"Origin": "null", "Sec-Fetch-Site": "same-site"},
        {"Origin": "http://testserver:8081", "Sec-Fetch-Site": "same-origin"},  # lying half
    ],
)
async def test_a_sign_in_posted_from_another_origin_is_refused(
    app: Any, headers: dict[str, str]
) -> None:
    async with console_client(app) as console:
        answer = await _post_sign_in(console, **headers)
        assert answer.status_code == 403
        assert "sent by another page" in answer.text
        assert SESSION_COOKIE not in answer.cookies
        assert "Sign out" not in (await console.get("/console")).text


@pytest.mark.parametrize(
    "headers",
    [
        {},  # a client that sends neither header: the double-submit pair decides
        {"Sec-Fetch-Site": "same-origin", "Origin": "http://testserver"},
        {"Sec-Fetch-Site": "same-origin", "Origin": "null"},  # a no-referrer page
        {"Origin": "http://testserver:80"},
    ],
)
async def test_a_sign_in_from_this_origin_works(app: Any, headers: dict[str, str]) -> None:
    async with console_client(app) as console:
        answer = await _post_sign_in(console, **headers)
        assert answer.status_code == 303, answer.text
        assert "Sign out" in (await console.get("/console")).text


async def test_over_https_the_sign_in_cookie_is_host_prefixed(app: Any) -> None:
    async with console_client(app, base_url="https://testserver") as console:
        form = await console.get("/console")
        cookie = form.headers["set-cookie"]
        assert cookie.startswith(f"__Host-{SIGN_IN_COOKIE}=")
        assert "Path=/;" in cookie and "Secure" in cookie and "Domain" not in cookie
        answer = await _post_sign_in(console, Origin="https://testserver")
        assert answer.status_code == 303


# --- in Chromium ----------------------------------------------------------------------------

_ATTACK = """<!doctype html><html><body>
<form id="f" method="post" action="{target}/console/sign-in">
<input name="csrf" value="planted-by-attacker"><input name="token" value="{token}">
</form>
<script>
document.cookie = "{cookie}=planted-by-attacker; path=/console";
document.getElementById("f").submit();
</script></body></html>"""


@pytest.fixture
def attacker_site(server: str) -> Iterator[str]:
    """A page on another port of the same host (127.0.0.1) that runs the attack."""
    page = _ATTACK.format(target=server, token=ATTACKER, cookie=SIGN_IN_COOKIE).encode()

    class Attack(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args: Any) -> None:
            pass

    site = ThreadingHTTPServer(("127.0.0.1", 0), Attack)
    thread = threading.Thread(target=site.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{site.server_address[1]}"
    finally:
        site.shutdown()
        site.server_close()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # as every browser test
def test_a_planted_cookie_and_auto_posted_form_do_not_sign_chromium_in(
    browser: Any, server: str, attacker_site: str
) -> None:
    context = browser.new_context(viewport={"width": 1200, "height": 700})
    try:
        page = context.new_page()
        page.set_default_timeout(15_000)
        with page.expect_response(f"{server}/console/sign-in") as posted:
            page.goto(attacker_site)
        # The attack was real: the browser sent the planted cookie with the forged form.
        sent = posted.value.request.header_value("cookie") or ""
        assert f"{SIGN_IN_COOKIE}=planted-by-attacker" in sent, sent
        assert posted.value.status == 403
        screenshot(page, "login-csrf-refused", full_page=False)
        page.goto(f"{server}/console")
        assert page.get_by_label("API token").is_visible()  # the sign-in form: not signed in
        assert page.get_by_role("button", name="Sign out").count() == 0
        assert not [c for c in context.cookies(server) if c["name"] == SESSION_COOKIE]
    finally:
        context.close()
