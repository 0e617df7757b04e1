"""Console sessions: a random id in an HttpOnly cookie, its SHA-256 in the database.

The cookie never holds the API token; the database never holds the session id, only its
hash, so a copy of the database opens no session. Every worker reads the same table, so a
browser may land on any of them, and "Sign out" deletes the row: the same cookie, replayed,
opens nothing. A session ends on its own after `SESSION_SECONDS`, and at once when its token
is revoked (the lookup joins the live token). A token holds at most `MAX_SESSIONS` live
sessions: signing in once more ends its oldest, so sign-ins cannot pile up rows.

CSRF: SameSite=Strict keeps the cookie off cross-site requests, and every form that changes
state carries a token besides: derived from the session id for signed-in forms, and a
double-submit cookie for the sign-in form (no session yet). SameSite says nothing about
another origin of the same site (another port of this host), which can also plant cookies:
forms that change state must come from this very origin (`same_origin`).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

from frsync.console.store import ConsoleStore, SignedIn
from frsync.models import now_ms

SESSION_COOKIE = "frsync_console"
SIGN_IN_COOKIE = "frsync_console_signin"
SESSION_SECONDS = 8 * 3600  # a working shift; sign in again after it
MAX_SESSIONS = 10  # live sessions per token (SPEC §10); signing in an 11th ends the oldest
PATH = "/console"


def sign_in_cookie(request: Request) -> str:
    """Over HTTPS a `__Host-` cookie: browsers let only this origin set one (no other
    port, no subdomain), with Secure and Path=/ (`set_cookie` gives it both)."""
    return f"__Host-{SIGN_IN_COOKIE}" if request.url.scheme == "https" else SIGN_IN_COOKIE


_DEFAULT_PORTS = {"http": 80, "https": 443}


def same_origin(request: Request) -> bool:
    """Whether a form post comes from a page of this origin, as far as the browser says
    (no page can set these headers): `Sec-Fetch-Site`, sent by every current browser, must
    be same-origin, and `Origin`, when sent, must name this host and port. `Origin: null`
    (a privacy-minded page or browser) passes only when `Sec-Fetch-Site` vouches for it. A
    client that sends neither (curl, a test client) is judged by the form's token alone."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):  # none: typed by the user
        return False
    origin = request.headers.get("origin")
    if origin is None:
        return True
    if origin == "null":
        return site == "same-origin"
    return _host_port(origin) == _host_port(
        f"{request.url.scheme}://{request.headers.get('host', '')}"
    )


def _host_port(url: str) -> tuple[str, int] | None:
    """(host, port) of an origin, the scheme's default port filled in; None if unreadable
    (`Origin: null`, from sandboxed or privacy-stripped pages, matches nothing)."""
    try:
        parts = urlsplit(url)
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme)
    except ValueError:
        return None
    if not parts.hostname or port is None:
        return None
    return parts.hostname.lower(), port


def _hash(session_id: str) -> bytes:
    return hashlib.sha256(session_id.encode()).digest()


def csrf_token(session_id: str) -> str:
    """The token signed-in forms carry: unguessable without the (HttpOnly) session id."""
    return hashlib.sha256(b"frsync-console-csrf:" + session_id.encode()).hexdigest()


def same(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(str(a), str(b))


def set_cookie(request: Request, response: Response, name: str, value: str, age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=age,
        path="/" if name.startswith("__Host-") else PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def clear_cookie(request: Request, response: Response, name: str) -> None:
    path = "/" if name.startswith("__Host-") else PATH
    response.delete_cookie(
        name, path=path, httponly=True, samesite="strict", secure=request.url.scheme == "https"
    )


async def start(store: ConsoleStore, token_id: int) -> tuple[str, int]:
    """A new session for the token: (session id for the cookie, lifetime in seconds)."""
    session_id = secrets.token_urlsafe(32)
    now = now_ms()
    expires_at = now + SESSION_SECONDS * 1000
    await store.create_session(_hash(session_id), token_id, now, expires_at, MAX_SESSIONS)
    return session_id, SESSION_SECONDS


async def current(store: ConsoleStore, request: Request) -> tuple[SignedIn, str] | None:
    """The signed-in principal and the session id, or None."""
    session_id = request.cookies.get(SESSION_COOKIE)
    if not session_id or len(session_id) > 100:
        return None
    signed_in = await store.session_principal(_hash(session_id), now_ms())
    return None if signed_in is None else (signed_in, session_id)


async def end(store: ConsoleStore, session_id: str) -> None:
    await store.end_session(_hash(session_id))
