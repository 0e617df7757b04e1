"""The web console (`/console`) and the interactive API reference (`/docs`).

Server-rendered Jinja2 pages over the same store as the API, plus a little JavaScript for
the Overview's live refresh; templates and static files ship inside this package, and no
page loads anything from another origin.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from frsync.console import limits, pages
from frsync.console.docs import DOCS_ROUTES
from frsync.console.headers import PageHeaders
from frsync.console.resources import ConsoleResources
from frsync.console.signin import HOME_PAGE, SIGN_IN, SIGN_OUT
from frsync.console.usage import UsageRecorder
from frsync.errors import RateLimited


async def _session_ended(request: Request) -> Response:
    # The live fragment is fetched by script: a redirect would swap in the sign-in page.
    return Response("Your session has ended.", 401, media_type="text/plain")


def _live_over_limit(request: Request, visit: pages.Visit, refused: RateLimited) -> Response:
    # The page's script reads Retry-After and waits that long before its next refresh.
    wait = str(limits.wait_seconds(refused))
    text = limits.over_limit_text(refused)
    return Response(text, 429, media_type="text/plain", headers={"Retry-After": wait})


def console_routes() -> list[BaseRoute]:
    static = StaticFiles(packages=[("frsync.console", "static")])
    return [
        Route("/console", HOME_PAGE, methods=["GET"]),
        Route("/console/sign-in", SIGN_IN, methods=["POST"]),
        Route("/console/sign-out", SIGN_OUT, methods=["POST"]),
        Route(
            "/console/live",
            pages.signed_in(pages.overview_live, _session_ended, _live_over_limit),
        ),
        Route("/console/errors", pages.signed_in(pages.errors)),
        Route("/console/fulfillment-request", pages.signed_in(pages.fulfillment_request)),
        Route("/console/tokens", pages.signed_in(pages.tokens)),
        Mount("/console/static", app=PageHeaders(static)),
    ]


__all__ = ["DOCS_ROUTES", "ConsoleResources", "UsageRecorder", "console_routes"]
