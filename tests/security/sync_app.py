"""The app on an event loop of its own, driven from synchronous code: Hypothesis's `@given`
and state machines are synchronous, so each example runs its requests to completion here."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from typing import Any

import httpx

from frsync.config import Settings
from tests.security.conftest import recording_client
from tests.security.dump import AccountingView, Dump, Dumper, accounting_view
from tests.security.tally import Recorder
from tests.support import running_app


class SyncApp:
    def __init__(self, settings: Settings, recorder: Recorder) -> None:
        self.loop = asyncio.new_event_loop()
        self.recorder = recorder
        self._stack = AsyncExitStack()
        self.app = self.run(self._stack.enter_async_context(running_app(settings)))
        self.dumper = self.run(Dumper(settings.database_url).open())
        self.clients: dict[str | None, httpx.AsyncClient] = {}

    def run(self, awaitable: Any) -> Any:
        return self.loop.run_until_complete(awaitable)

    def request(self, token: str | None, method: str, url: str, **kwargs: Any) -> httpx.Response:
        if token not in self.clients:
            # Conformance to the document is schemathesis's job in this family.
            client = recording_client(self.app, self.recorder, token, conformance=False)
            self.clients[token] = client
        return self.run(self.clients[token].request(method, url, **kwargs))  # type: ignore[no-any-return]

    def dump(self) -> Dump:
        return self.run(self.dumper.dump())  # type: ignore[no-any-return]

    def view(self) -> AccountingView:
        return self.run(accounting_view(self.dumper))  # type: ignore[no-any-return]

    def close(self) -> None:
        for client in self.clients.values():
            self.run(client.aclose())
        self.run(self.dumper.close())
        self.run(self._stack.aclose())
        self.loop.close()
