"""The application factory: settings in, an ASGI app out; resources born in the lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from frsync import sandbox
from frsync.api.access_log import AccessLog
from frsync.api.auth import Gatekeeper, TokenCache
from frsync.api.call import FrRoutes, serve
from frsync.api.loop_lag import LoopLag
from frsync.api.metrics import Metrics
from frsync.api.middleware import RequestContext
from frsync.api.problems import HTTP_PROBLEMS, error_response, http_problem
from frsync.api.routes import FR_ROUTES, ROUTES
from frsync.backends import open_backend
from frsync.config import Settings
from frsync.console import DOCS_ROUTES, ConsoleResources, UsageRecorder, console_routes
from frsync.errors import FrsyncError
from frsync.ratelimit import open_rate_limit_store
from frsync.ratelimit.memory import Clock


def _request_id(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


async def _on_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, FrsyncError)
    return error_response(exc, _request_id(request))


async def _on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    # The router's answers (unknown path, wrong method) take their text from problems.py.
    detail = None if exc.status_code in HTTP_PROBLEMS else str(exc.detail)
    return http_problem(exc.status_code, detail, _request_id(request), **(exc.headers or {}))


@asynccontextmanager
async def _background(work: Coroutine[Any, Any, None]) -> AsyncIterator[None]:
    """Run `work` as a task while the block runs; cancel it and wait for it at the end."""
    task = asyncio.create_task(work)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class FrsyncApp(Starlette):
    """Starlette, with the FR endpoints taken before its router and exception middleware:
    they go through the same middleware (request id, headers, metrics, log, the sandbox's
    journal) around `api.call.serve`, which answers errors with the same handlers."""

    def __init__(self, fr_routes: FrRoutes, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._fr_routes = fr_routes
        self._fr_stack: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self._fr_routes.match(scope):
            scope["app"] = self
            if self._fr_stack is None:
                self._fr_stack = self._wrapped(serve(self.exception_handlers))
            await self._fr_stack(scope, receive, send)
            return
        await super().__call__(scope, receive, send)

    def _wrapped(self, app: ASGIApp) -> ASGIApp:
        for cls, args, kwargs in reversed(self.user_middleware):
            app = cls(app, *args, **kwargs)
        return app


def create_app(settings: Settings, *, clock: Clock = time.monotonic) -> Starlette:
    """The API. `clock` (monotonic seconds) drives rate limits and the token cache; tests
    pass their own to control time."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # Each resource is closed by the stack, in reverse order: a failure while starting
        # closes what was already open, and shutdown closes everything.
        async with contextlib.AsyncExitStack() as stack:
            backend = await open_backend(settings, allow_unreachable=True)
            store = backend.store
            stack.push_async_callback(store.close)
            limiter = open_rate_limit_store(
                settings.rate_limit_url, timeout=settings.redis_timeout, clock=clock
            )
            stack.push_async_callback(limiter.close)
            app.state.settings = settings
            app.state.store = store
            app.state.limiter = limiter
            # A sandbox looks every token up: removed tenants' tokens fail on the next request.
            cache = (0.0, 0.0) if settings.sandbox else (settings.token_cache_seconds, 60.0)
            tokens = TokenCache(store, cache[0], clock, max_age=cache[1])
            faults = sandbox.start(app.state, backend.sandbox) if settings.sandbox else None
            if settings.sandbox:  # its background purge ends before the store closes
                stack.push_async_callback(app.state.sandbox_purger.stop)
            usage = UsageRecorder()  # per-token counts for the console's Tokens view
            live = app.state.sandbox_accounts.live if settings.sandbox else None
            app.state.gatekeeper = Gatekeeper(settings, tokens, limiter, faults, usage.record, live)
            app.state.metrics = metrics
            queries = backend.console
            app.state.console = ConsoleResources(queries)
            stack.push_async_callback(app.state.console.close)
            app.state.usage = usage
            await stack.enter_async_context(_background(usage.run(queries)))
            stack.callback(access_log.flush)  # the last lines, at shutdown
            if settings.metrics_dir:
                stack.callback(metrics.publish)  # this worker's last counts stay in the sum
                await stack.enter_async_context(_background(metrics.publish_every(store, limiter)))
            if settings.loop_lag_sample_ms:
                metrics.loop_lag = LoopLag()
                sampling = metrics.loop_lag.sample_every(settings.loop_lag_sample_ms / 1000)
                await stack.enter_async_context(_background(sampling))
            yield

    metrics = Metrics(settings.metrics_dir)
    access_log = AccessLog(settings.log_requests)
    routes = [*ROUTES, *console_routes(), *(DOCS_ROUTES if settings.docs_enabled else ())]
    middleware = [Middleware(RequestContext, access_log=access_log, metrics=metrics)]
    handlers: dict[Any, Any] = {FrsyncError: _on_error, HTTPException: _on_http_error}
    if settings.sandbox:  # without it, no /__admin route exists: those paths are plain 404s
        routes = [*sandbox.routes(), *routes]
        middleware += sandbox.middleware()
        handlers |= sandbox.EXCEPTION_HANDLERS
    return FrsyncApp(
        FR_ROUTES,
        routes=routes,
        middleware=middleware,
        exception_handlers=handlers,
        lifespan=lifespan,
    )
