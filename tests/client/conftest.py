"""The integrator's side against the real server: in-process (ASGI) and over TCP.

The in-process server runs its lifespan and requests on an anyio portal thread;
`BlockingASGITransport` hands it each request of a `Client`, and an `AsyncClient` runs on that
portal's loop itself. `make_client` gives every behaviour test both clients: an `AsyncClient`
behind `AsyncAdapter`, which calls it from the test's thread with `Client`'s signatures.
Timing tests inject a clock and a sleep instead of waiting.
"""

from __future__ import annotations

import itertools
import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any, cast

import anyio.from_thread
import httpx
import pytest
from starlette.types import ASGIApp

from frsync.client import AsyncClient, Client
from frsync.config import Settings
from tests.support import TOKENS, make_settings, running_app, serve_over_tcp

# Generous limits so that tests which are not about the rate limit never meet it.
FAST = {"burst": 1000, "rate": 1000.0}

MakeClient = Callable[..., Client]
_servers = itertools.count()  # a host name per in-process server: buckets are per base URL


class BlockingASGITransport(httpx.BaseTransport):
    """`httpx.ASGITransport` for a sync client: each request runs on the app's event loop."""

    def __init__(self, app: ASGIApp, portal: anyio.from_thread.BlockingPortal) -> None:
        self._inner = httpx.ASGITransport(app=app)
        self._portal = portal

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self._portal.call(self._handle, request)

    async def _handle(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        content = await response.aread()
        return httpx.Response(response.status_code, headers=response.headers, content=content)


@pytest.fixture
def server_settings(tmp_path: Path, sqlite_template: Path) -> Callable[..., Settings]:
    """Settings for a fresh copy of the migrated SQLite database, with `overrides`."""

    def build(**overrides: Any) -> Settings:
        database = tmp_path / "frsync.db"
        shutil.copyfile(sqlite_template, database)
        return make_settings(tmp_path, database_url=f"sqlite:///{database}", **overrides)

    return build


@pytest.fixture
def tcp_server(server_settings: Callable[..., Settings]) -> Iterator[Callable[..., str]]:
    """Start a real uvicorn server (fixture loaded); returns its base URL."""
    with ExitStack() as stack:
        yield lambda **overrides: stack.enter_context(
            serve_over_tcp(server_settings(**{**FAST, **overrides}))
        )


class AsyncAdapter:
    """An `AsyncClient` called from a test's thread, on `portal`'s loop, like a `Client`:
    coroutine methods return their result, async iterators become (lazy) iterators."""

    def __init__(self, client: AsyncClient, portal: anyio.from_thread.BlockingPortal) -> None:
        self._client = client
        self._portal = portal

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if name.startswith("iter_"):
            return lambda *args, **kwargs: self._iterate(attribute(*args, **kwargs))
        if callable(attribute):
            return lambda *args, **kwargs: self._portal.call(lambda: attribute(*args, **kwargs))
        return attribute

    def __repr__(self) -> str:
        return repr(self._client)

    def _iterate(self, iterator: AsyncIterator[Any]) -> Iterator[Any]:
        end = object()

        async def step() -> Any:
            return await anext(iterator, end)

        while (item := self._portal.call(step)) is not end:
            yield item


def adapt(client: AsyncClient, stack: ExitStack, portal: Any = None) -> Client:
    """`client` behind an `AsyncAdapter` (on `portal`, else a new one), closed with `stack`."""
    if portal is None:
        portal = stack.enter_context(anyio.from_thread.start_blocking_portal())
    stack.callback(portal.call, client.aclose)
    return cast(Client, AsyncAdapter(client, portal))


class InProcess:
    """The app running on a portal thread: transports for either client."""

    def __init__(self, app: ASGIApp, portal: anyio.from_thread.BlockingPortal) -> None:
        self.app, self.portal = app, portal
        self.base_url = f"http://testserver-{next(_servers)}"

    def transport(self) -> httpx.BaseTransport:
        return BlockingASGITransport(self.app, self.portal)

    def async_transport(self) -> httpx.AsyncBaseTransport:
        return httpx.ASGITransport(app=self.app)


@pytest.fixture
def in_process(server_settings: Callable[..., Settings]) -> Iterator[Callable[..., InProcess]]:
    """Start the app in-process (lifespan on, fixture loaded)."""
    with ExitStack() as stack:

        def start(**overrides: Any) -> InProcess:
            portal = stack.enter_context(anyio.from_thread.start_blocking_portal())
            settings = server_settings(**{**FAST, **overrides})
            app = stack.enter_context(portal.wrap_async_context_manager(running_app(settings)))
            return InProcess(app, portal)

        yield start


@pytest.fixture
def asgi_transport(
    in_process: Callable[..., InProcess],
) -> Callable[..., httpx.BaseTransport]:
    """Start the app in-process (lifespan on, fixture loaded); returns a sync transport."""
    return lambda **overrides: in_process(**overrides).transport()


@pytest.fixture
def base_url(tcp_server: Callable[..., str]) -> str:
    """A real server over TCP with the fixture loaded (for the command-line tests)."""
    return tcp_server()


@pytest.fixture
def api(base_url: str) -> Iterator[Client]:
    """A client on `base_url` with the account-1 token, to check what a command did."""
    with Client(TOKENS["account1"], base_url=base_url) as client:
        yield client


@pytest.fixture(params=["asgi-sync", "tcp-sync", "asgi-async", "tcp-async"])
def make_client(
    request: pytest.FixtureRequest,
    in_process: Callable[..., InProcess],
    tcp_server: Callable[..., str],
) -> Iterator[MakeClient]:
    """`make_client(token_name="account1", server={...overrides}, **client_options)`: a
    `Client`, or an `AsyncClient` behind `AsyncAdapter`, on one server per test."""
    where, kind = request.param.split("-")
    with ExitStack() as stack:
        started: dict[str, Any] = {}

        def make(
            token_name: str = "account1", server: dict[str, Any] | None = None, **options: Any
        ) -> Client:
            if not started:  # one server per test, started by the first client
                if where == "asgi":
                    started["app"] = app = in_process(**(server or {}))
                    started["base_url"] = app.base_url
                else:
                    started["base_url"] = tcp_server(**(server or {}))
            token = TOKENS.get(token_name, token_name)
            app = started.get("app")
            if kind == "sync":
                transport = None if app is None else app.transport()
                client = Client(token, base_url=started["base_url"], transport=transport, **options)
                return stack.enter_context(client)
            async_transport = None if app is None else app.async_transport()
            async_client = AsyncClient(
                token, base_url=started["base_url"], transport=async_transport, **options
            )
            return adapt(async_client, stack, None if app is None else app.portal)

        yield make
