"""Signing in and out of the console.

Sign-in takes an API token of any type in a form (never in a URL), checks it the way the
API does (the same token cache, and the same per-address limit on bad tokens), charges the
token's own bucket once it is known (a sign-in is a request of that token), and starts a
session; a token keeps at most `sessions.MAX_SESSIONS` live ones.

Login CSRF: another page must not be able to sign a browser in with a token of its choosing.
A double-submit cookie alone does not stop it: any origin of the same *site* (another port
of the same host, a sibling subdomain) can plant that cookie with `document.cookie`, and a
secret-signed value would not help either, since an attacker can fetch a valid pair for
himself. So the post must come from this origin (`sessions.same_origin`: the browser's
`Sec-Fetch-Site` and `Origin`, which no page can set), and the double-submit pair must
match as well; over HTTPS the cookie is a `__Host-` one, which no other origin can set.
"""

from __future__ import annotations

import secrets
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from frsync.api.body import read_body
from frsync.console import limits, sessions
from frsync.console.headers import secure
from frsync.console.pages import HOME, overview, render, signed_in
from frsync.console.resources import resources
from frsync.errors import RateLimited, Unauthenticated

MAX_FORM_BYTES = 4096
_FORM_AGE = 3600  # seconds a sign-in form stays usable

REFUSED = "That token is not valid: it is unknown or has been revoked."
EXPIRED_FORM = "The sign-in form had expired. Please try again."
OTHER_ORIGIN = (
    "That sign-in was sent by another page, not this form, so it was ignored."
    " To sign in, use the form below."
)


async def _sign_in_form(
    request: Request, status: int = 200, message: str | None = None, notice: str | None = None
) -> Response:
    form_token = secrets.token_urlsafe(24)
    response = render(
        request, "sign_in.html", status, csrf=form_token, message=message, notice=notice
    )
    sessions.set_cookie(request, response, sessions.sign_in_cookie(request), form_token, _FORM_AGE)
    return response


async def sign_in_page(request: Request) -> Response:
    notice = "You are signed out." if "signed-out" in request.query_params else None
    return await _sign_in_form(request, notice=notice)


async def _form(request: Request) -> dict[str, str]:
    settings = request.app.state.settings
    body = await read_body(request, MAX_FORM_BYTES, settings.request_read_timeout)
    fields = parse_qs(body.decode("utf-8", "replace"), max_num_fields=10)
    return {name: values[0] for name, values in fields.items()}


async def sign_in(request: Request) -> Response:
    form = await _form(request)
    planted = request.cookies.get(sessions.sign_in_cookie(request))
    if not sessions.same_origin(request):
        return await _sign_in_form(request, 403, OTHER_ORIGIN)
    if not sessions.same(form.get("csrf"), planted):
        return await _sign_in_form(request, 403, EXPIRED_FORM)
    token = form.get("token", "")
    if len(token) > 1000 or not token.isascii():
        token = ""  # not a token we could have issued; still counts as a bad try
    try:
        principal, bucket = await request.app.state.gatekeeper.identify_token(request, token)
    except Unauthenticated:
        return await _sign_in_form(request, 401, REFUSED)
    except RateLimited as error:
        wait = limits.wait_seconds(error)
        message = f"Too many sign-in attempts from this address. Try again in {wait} s."
        return await _too_many(request, error, message)
    refused = await limits.spend(request, principal.token_id, bucket)
    if refused is not None:
        return await _too_many(request, refused, limits.over_limit_text(refused))
    session_id, age = await sessions.start(resources(request).queries, principal.token_id)
    response = RedirectResponse(HOME, 303)
    sessions.set_cookie(request, response, sessions.SESSION_COOKIE, session_id, age)
    sessions.clear_cookie(request, response, sessions.sign_in_cookie(request))
    return response


async def _too_many(request: Request, refused: RateLimited, message: str) -> Response:
    response = await _sign_in_form(request, 429, message)
    response.headers["Retry-After"] = str(limits.wait_seconds(refused))
    return response


async def sign_out(request: Request) -> Response:
    """End the session on the server (the cookie, replayed, opens nothing) and forget it."""
    form = await _form(request)
    found = await sessions.current(resources(request).queries, request)
    if found is not None:
        _, session_id = found
        forged = not sessions.same(form.get("csrf"), sessions.csrf_token(session_id))
        if forged or not sessions.same_origin(request):
            return render(request, "forbidden.html", 403)
        await sessions.end(resources(request).queries, session_id)
    response = RedirectResponse(f"{HOME}?signed-out", 303)
    sessions.clear_cookie(request, response, sessions.SESSION_COOKIE)
    return response


HOME_PAGE = signed_in(overview, anonymous=sign_in_page)
SIGN_IN = secure(sign_in)
SIGN_OUT = secure(sign_out)
