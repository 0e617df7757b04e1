"""Headers on every console and /docs answer: only this server's own origin may supply
scripts, styles, images or form targets, and no page may be framed (clickjacking)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import wraps

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

Handler = Callable[[Request], Awaitable[Response]]

# Swagger UI draws its icons from data: URIs in its own stylesheet; nothing else needs more.
CSP = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none';"
    " form-action 'self'; frame-ancestors 'none'"
)
_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    # Nothing leaves for another origin; same-origin requests keep theirs, and with it a
    # form post's real `Origin` (under no-referrer browsers send `Origin: null`), which the
    # sign-in's same-origin check reads (sessions.same_origin).
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


class PageHeaders:
    """ASGI wrapper adding the headers above to every answer of the wrapped app."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *_HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def secure(handler: Handler) -> Handler:
    """Request-handler wrapper adding the headers above to its answer."""

    @wraps(handler)
    async def page(request: Request) -> Response:
        response = await handler(request)
        for name, value in _HEADERS:
            response.headers[name.decode()] = value.decode()
        return response

    return page
