"""Around every request: a request id, the headers every answer carries, one JSON log line,
and the last line of defence that turns an unexpected failure into a clean 500."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from frsync.api.access_log import AccessLog
from frsync.api.auth import POOL_SCOPE_KEY
from frsync.api.metrics import UNMATCHED, Metrics
from frsync.api.problems import http_problem
from frsync.api.request_id import new_request_id
from frsync.ratelimit import Decision

error_log = logging.getLogger("frsync.error")

_FIXED_HEADERS = [
    (b"cache-control", b"no-store"),
    (b"x-content-type-options", b"nosniff"),
]


def pool_headers(decision: Decision) -> list[tuple[bytes, bytes]]:
    """The rate-limit headers the real API sends on every authenticated answer."""
    return [
        (b"x-auth-pool-size", str(decision.size).encode()),
        (b"x-auth-pool-used", str(decision.used).encode()),
        (b"x-auth-replenished-per-second", f"{decision.rate:g}".encode()),
    ]


def _shutting_down(request_id: str) -> Response:
    return http_problem(503, None, request_id, **{"Retry-After": "1"})


class RequestContext:
    def __init__(
        self, app: ASGIApp, *, access_log: AccessLog | None = None, metrics: Metrics | None = None
    ) -> None:
        self.app = app
        self.access_log = access_log if access_log is not None and access_log.enabled else None
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        response: dict[str, Any] = {"status": 500, "started": False}

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                response.update(status=message["status"], started=True)
                headers = list(message.get("headers", ()))
                headers += _FIXED_HEADERS
                headers.append((b"x-request-id", request_id.encode()))
                decision = scope.get(POOL_SCOPE_KEY)
                if decision is not None:
                    headers += pool_headers(decision)
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except asyncio.CancelledError:
            # uvicorn cancels what still runs when the shutdown grace period ends. A 503 tells
            # the client to retry (elsewhere); PATCH is idempotent by value, so that is safe.
            if not response["started"]:
                with contextlib.suppress(Exception):
                    await _shutting_down(request_id)(scope, receive, send_with_headers)
            raise
        except Exception:
            error_log.exception("unhandled error", extra={"request_id": request_id})
            if not response["started"]:
                answer = http_problem(500, None, request_id)
                await answer(scope, receive, send_with_headers)
        finally:
            if self.metrics is not None:
                # The route template, never the raw path: ids in label values would make a
                # new series per FR. Starlette leaves the matched route in the scope.
                route = getattr(scope.get("route"), "path", UNMATCHED)
                elapsed = time.perf_counter() - started
                self.metrics.observe(route, scope["method"], response["status"], elapsed)
            if self.access_log is not None:
                ms = round((time.perf_counter() - started) * 1000, 3)
                status = response["status"]
                self.access_log.add(request_id, scope["method"], scope["path"], status, ms)
