"""The integrator's side against the real server: in-process (ASGI) and over TCP.

The client is synchronous, so the in-process server runs its lifespan and requests on an anyio
portal thread and `BlockingASGITransport` hands it each request. Timing tests inject a clock
and a sleep instead of waiting.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import anyio.from_thread
import httpx
import pytest
from starlette.types import ASGIApp

from frsync.client import Client
from frsync.config import Settings
from tests.support import TOKENS, make_settings, running_app, serve_over_tcp

# Generous limits so that tests which are not about the rate limit never meet it.
FAST = {"burst": 1000, "rate": 1000.0}

MakeClient = Callable[..., Client]


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


@pytest.fixture
def asgi_transport(
    server_settings: Callable[..., Settings],
) -> Iterator[Callable[..., httpx.BaseTransport]]:
    """Start the app in-process (lifespan on, fixture loaded); returns a sync transport."""
    with ExitStack() as stack:

        def start(**overrides: Any) -> httpx.BaseTransport:
            portal = stack.enter_context(anyio.from_thread.start_blocking_portal())
            settings = server_settings(**{**FAST, **overrides})
            app = stack.enter_context(portal.wrap_async_context_manager(running_app(settings)))
            return BlockingASGITransport(app, portal)

        yield start


@pytest.fixture
def base_url(tcp_server: Callable[..., str]) -> str:
    """A real server over TCP with the fixture loaded (for the command-line tests)."""
    return tcp_server()


@pytest.fixture
def api(base_url: str) -> Iterator[Client]:
    """A client on `base_url` with the account-1 token, to check what a command did."""
    with Client(TOKENS["account1"], base_url=base_url) as client:
        yield client


@pytest.fixture(params=["asgi", "tcp"])
def make_client(
    request: pytest.FixtureRequest,
    asgi_transport: Callable[..., httpx.BaseTransport],
    tcp_server: Callable[..., str],
) -> Iterator[MakeClient]:
    """`make_client(token_name="account1", server={...overrides}, **client_options)`."""
    with ExitStack() as stack:
        started: dict[str, Any] = {}

        def make(
            token_name: str = "account1", server: dict[str, Any] | None = None, **options: Any
        ) -> Client:
            if not started:  # one server per test, started by the first client
                if request.param == "asgi":
                    started["transport"] = asgi_transport(**(server or {}))
                    started["base_url"] = "http://testserver"
                else:
                    started["base_url"] = tcp_server(**(server or {}))
            token = TOKENS.get(token_name, token_name)
            client = Client(
                token, base_url=started["base_url"], transport=started.get("transport"), **options
            )
            return stack.enter_context(client)

        yield make
