"""The FR endpoints served straight from ASGI: no Starlette `Request`, router or exception
middleware on their way, the same handlers and the same error table as everywhere.

Starlette's app, router, exception middleware and `Request` were 19–26% of a PATCH's CPU.
`FrRoutes` matches the FR endpoints by method and path (one dict lookup and at most one
regular expression), `ApiCall` is what a handler reads of the request (headers, path and
query parameters, the body stream), and a handler returns an `Answer` that is sent as two
ASGI messages. The app's own middleware (request id, headers, metrics, access log; the
sandbox's journal) wraps this path exactly as it wraps Starlette's: see `frsync.app`.
The same routes also stay in Starlette's router, through `starlette_endpoint`, so that a
HEAD or a wrong method gets the router's ordinary answer.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from starlette.datastructures import QueryParams
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["Answer", "ApiCall", "Endpoint", "FrRoutes", "Incoming", "starlette_endpoint"]


class Incoming(Protocol):
    """What the body helpers read: an `ApiCall`, or Starlette's `Request` (admin API, console)."""

    @property
    def headers(self) -> Mapping[str, str]: ...

    def stream(self) -> AsyncIterator[bytes]: ...


@dataclass(frozen=True, slots=True)
class Answer:
    """A handler's successful answer; errors are raised, and answered by the error table."""

    status: int
    body: bytes = b""
    media_type: bytes | None = None


NO_CONTENT = Answer(204)


class ApiCall:
    """What an FR handler reads of its request. Duck-types the parts of Starlette's
    `Request` the shared helpers use (`scope`, `headers.get`, `stream`)."""

    __slots__ = ("_headers", "receive", "scope")

    def __init__(self, scope: Scope, receive: Receive) -> None:
        self.scope = scope
        self.receive = receive
        self._headers: dict[str, str] | None = None

    @property
    def headers(self) -> Mapping[str, str]:
        """Lower-case names (as ASGI gives them); the first of repeated headers wins."""
        if self._headers is None:
            headers: dict[str, str] = {}
            for name, value in self.scope["headers"]:
                headers.setdefault(name.decode("latin-1"), value.decode("latin-1"))
            self._headers = headers
        return self._headers

    @property
    def path_params(self) -> dict[str, str]:
        params: dict[str, str] = self.scope["path_params"]
        return params

    @property
    def query_params(self) -> QueryParams:
        return QueryParams(self.scope["query_string"])

    @property
    def app(self) -> Any:
        return self.scope["app"]

    async def stream(self) -> AsyncIterator[bytes]:
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnect()
            chunk = message.get("body", b"")
            if chunk:
                yield chunk
            if not message.get("more_body", False):
                return


Endpoint = Callable[[ApiCall], Awaitable[Answer]]
_PARAM = re.compile(r"\{(\w+)\}")


class FrRoutes:
    """Method and path → endpoint for the FR routes; the matched route in the scope as the
    router would leave it (`route`, `endpoint`, `path_params`), for metrics and the sandbox."""

    def __init__(self, routes: list[tuple[str, str, Endpoint]]) -> None:
        self._exact: dict[tuple[str, str], tuple[Route, Endpoint]] = {}
        self._patterns: list[tuple[str, re.Pattern[str], Route, Endpoint]] = []
        for method, path, endpoint in routes:
            route = Route(path, starlette_endpoint(endpoint), methods=[method])
            if "{" not in path:
                self._exact[method, path] = (route, endpoint)
            else:
                regex = re.compile("^" + _PARAM.sub(r"(?P<\1>[^/]+)", path) + "$")
                self._patterns.append((method, regex, route, endpoint))
        self.routes = [route for route, _ in self._exact.values()]
        self.routes += [route for _, _, route, _ in self._patterns]

    def match(self, scope: Scope) -> bool:
        method, path = scope["method"], scope["path"]
        found = self._exact.get((method, path))
        if found is not None:
            scope["route"], scope["endpoint"] = found
            scope["path_params"] = {}
            return True
        for route_method, regex, route, endpoint in self._patterns:
            if route_method == method:
                matched = regex.match(path)
                if matched is not None:
                    scope["route"], scope["endpoint"] = route, endpoint
                    scope["path_params"] = matched.groupdict()
                    return True
        return False


ErrorHandlers = Mapping[Any, Callable[[Request, Exception], Any]]


def serve(handlers: ErrorHandlers) -> ASGIApp:
    """The innermost app of the lean path: call the matched endpoint, send its answer, or
    answer its error through the app's exception handlers (the one table)."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            answer = await scope["endpoint"](ApiCall(scope, receive))
        except Exception as error:
            handler = _handler_for(handlers, type(error))
            if handler is None:
                raise
            response = await handler(Request(scope, receive), error)
            await response(scope, receive, send)
            return
        await send_answer(send, answer)

    return app


def _handler_for(
    handlers: ErrorHandlers, kind: type[Exception]
) -> Callable[[Request, Exception], Any] | None:
    for cls in kind.__mro__:
        if cls in handlers:
            return handlers[cls]
    return None


async def send_answer(send: Send, answer: Answer) -> None:
    # The headers Starlette's Response would send: none for a 204, else length and type.
    headers: list[tuple[bytes, bytes]] = []
    if answer.status != 204:
        headers.append((b"content-length", str(len(answer.body)).encode()))
    if answer.media_type is not None:
        headers.append((b"content-type", answer.media_type))
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    await send({"type": "http.response.body", "body": answer.body})


def starlette_endpoint(endpoint: Endpoint) -> Callable[[Request], Awaitable[Response]]:
    """The same endpoint for Starlette's router (HEAD requests, and method checks)."""

    async def route(request: Request) -> Response:
        answer = await endpoint(ApiCall(request.scope, request.receive))
        media_type = None if answer.media_type is None else answer.media_type.decode()
        return Response(answer.body, answer.status, media_type=media_type)

    return route
