"""The console's pages. Thin: who is signed in, one query, one template.

Every page but sign-in needs a live session (`signed_in`), and every query takes the
session's principal, so a page can only ever show the signed-in token's scope. Every
signed-in request spends one request of the token's rate-limit bucket first (`limits.py`);
over the limit, the page says so instead of reading anything.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from frsync.api.auth import bucket_key
from frsync.console import limits, sessions
from frsync.console.chart import layout
from frsync.console.headers import secure
from frsync.console.overview import WITH_ERROR
from frsync.console.resources import resources
from frsync.console.templating import templates
from frsync.contract import MAX_ACCOUNTING_ERROR, canonical_int
from frsync.domain import Principal
from frsync.errors import RateLimited, StoreBusy
from frsync.models import now_ms

HOME = "/console"
ERRORS_PAGE_SIZE = 50
HISTORY_PAGE_SIZE = 20
TOKENS_PAGE_SIZE = 100
MAX_SEARCH = 200  # characters; an FR number is far shorter
MAX_DB_INT = 2**63 - 1  # BIGINT


@dataclass(frozen=True, slots=True)
class Visit:
    """A signed-in request: who, what they may see, and the token their forms carry."""

    principal: Principal
    scope_name: str | None
    csrf: str

    @property
    def scope(self) -> str:
        p = self.principal
        if p.is_operator:
            return "every account"
        named = f" · {self.scope_name}" if self.scope_name else ""
        return f"{p.token_type} {p.scope_id}{named}"


Page = Callable[[Request, Visit], Awaitable[Response]]


def render(request: Request, name: str, status: int = 200, **context: Any) -> Response:
    return templates.TemplateResponse(request, name, context, status_code=status)


Handler = Callable[[Request], Awaitable[Response]]
Refusal = Callable[[Request, Visit, RateLimited], Response]


async def _to_sign_in(request: Request) -> Response:
    return RedirectResponse(HOME, 303)


def over_limit_page(request: Request, visit: Visit, refused: RateLimited) -> Response:
    """A page in the console's frame that says what happened and when to try again."""
    wait = limits.wait_seconds(refused)
    response = render(request, "over_limit.html", 429, visit=visit, wait=wait)
    response.headers["Retry-After"] = str(wait)
    return response


def signed_in(
    handler: Page, anonymous: Handler = _to_sign_in, over_limit: Refusal = over_limit_page
) -> Handler:
    """Route wrapper: call `handler` with the session's Visit, or `anonymous` (by default a
    redirect to the sign-in page); the token's bucket is charged first, and `over_limit`
    answers when it is empty. A busy store answers a 503 page that says it will pass, not
    an error trace."""

    @wraps(handler)
    async def route(request: Request) -> Response:
        try:
            found = await sessions.current(resources(request).queries, request)
            if found is None:
                return await anonymous(request)
            signed, session_id = found
            if not await request.app.state.gatekeeper.is_live(signed.principal):
                return await anonymous(request)  # a reset sandbox tenant's session
            visit = Visit(signed.principal, signed.scope_name, sessions.csrf_token(session_id))
            bucket = bucket_key(signed.token_hash)  # the bucket its API requests spend
            refused = await limits.spend(request, signed.principal.token_id, bucket)
            if refused is not None:
                return over_limit(request, visit, refused)
            try:
                return await handler(request, visit)
            except BadParameter as bad:
                return render(request, "bad_request.html", 400, visit=visit, parameter=bad.name)
        except StoreBusy:
            response = render(request, "busy.html", 503)
            response.headers["Retry-After"] = "2"
            return response

    return secure(route)


async def overview(request: Request, visit: Visit) -> Response:
    return render(request, "overview.html", visit=visit, **await _overview(request, visit))


async def overview_live(request: Request, visit: Visit) -> Response:
    """The refreshing part of the Overview, for the page's script to swap in."""
    return render(request, "_overview_live.html", visit=visit, **await _overview(request, visit))


async def _overview(request: Request, visit: Visit) -> dict[str, Any]:
    found = resources(request)
    data = await found.overviews.get(found.queries, visit.principal)
    return {"overview": data, "chart": layout(data.hours)}


async def errors(request: Request, visit: Visit) -> Response:
    """Every FR with an error, or (`?message=`) those with one message, newest first."""
    queries = resources(request).queries
    before = _cursor(request.query_params.get("before"))
    message = request.query_params.get("message") or None
    if message is not None and len(message) > MAX_ACCOUNTING_ERROR:
        message = None  # no stored error is that long
    rows = await queries.errors_page(visit.principal, before, ERRORS_PAGE_SIZE + 1, message)
    older = None
    if len(rows) > ERRORS_PAGE_SIZE:
        rows = rows[:ERRORS_PAGE_SIZE]
        older = f"{rows[-1].updated_at}.{rows[-1].id}"
    if message is None:
        total = await queries.count(visit.principal, WITH_ERROR)
    else:
        total = await queries.count_errors(visit.principal, message)
    return render(
        request,
        "errors.html",
        visit=visit,
        rows=rows,
        older=older,
        total=total,
        first_page=before is None,
        message=message,
    )


def _cursor(text: str | None) -> tuple[int, int] | None:
    """`<updated_at>.<id>` of the last row seen; none (or empty) means the first page."""
    if not text:
        return None
    parts = [_int(part, "before") for part in text.split(".")]
    if len(parts) != 2:
        raise BadParameter("before")
    return parts[0] or 0, parts[1] or 0


async def fulfillment_request(request: Request, visit: Visit) -> Response:
    text = request.query_params.get("q", "").strip()[:MAX_SEARCH]
    if not text:
        return RedirectResponse(HOME, 303)
    queries = resources(request).queries
    ids = await queries.find(visit.principal, text, 20)
    if len(ids) > 1:
        return render(request, "matches.html", visit=visit, query=text, ids=ids)
    detail = None
    if ids:
        before = _int(request.query_params.get("before"), "before")
        detail = await queries.detail(visit.principal, ids[0], before, HISTORY_PAGE_SIZE + 1)
    if detail is None:
        return render(request, "not_found.html", 404, visit=visit, query=text)
    history = detail.history[:HISTORY_PAGE_SIZE]
    older = history[-1].id if len(detail.history) > HISTORY_PAGE_SIZE else None
    return render(
        request, "fr.html", visit=visit, query=text, fr=detail.fr, history=history, older=older
    )


class BadParameter(ValueError):
    """A query parameter of a page that is not what its links ever send: a 400 page."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def _int(text: str | None, name: str) -> int | None:
    """None when absent or empty, else the API's one integer rule (`contract.canonical_int`:
    `221`, never `0221`, `٢٢١` or `２２１`) within what the database stores, or BadParameter."""
    if not text:
        return None
    value = canonical_int(text)
    if value is None or value > MAX_DB_INT:
        raise BadParameter(name)
    return value


async def tokens(request: Request, visit: Visit) -> Response:
    if not visit.principal.is_operator:  # the page does not exist for anyone else
        return render(request, "not_found_page.html", 404, visit=visit)
    after = _int(request.query_params.get("after"), "after") or 0
    since_minute = now_ms() // 60_000 - 59  # this minute and the 59 before it
    rows = await resources(request).queries.tokens_page(after, TOKENS_PAGE_SIZE + 1, since_minute)
    more = rows[TOKENS_PAGE_SIZE - 1].id if len(rows) > TOKENS_PAGE_SIZE else None
    return render(
        request, "tokens.html", visit=visit, rows=rows[:TOKENS_PAGE_SIZE], more=more, after=after
    )
