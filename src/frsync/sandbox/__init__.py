"""Sandbox mode (`frsync serve --sandbox`): the admin API that lets an integrator's test suite
drive the server — reset, tenants, fault rules, the request journal (SPEC §9).

`create_app` adds these pieces only when `settings.sandbox` is on; without it no /__admin
route exists, so every such path is the router's ordinary 404.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from frsync.api.auth import FaultHook
from frsync.api.problems import HTTP_TITLES, problem_response
from frsync.api.routes import OPENAPI_DOCUMENT
from frsync.sandbox.faults import (
    Accounts,
    DropConnection,
    FaultInjector,
    ForcedAnswer,
    forced_response,
)
from frsync.sandbox.journal import JournalParts, SandboxMiddleware
from frsync.sandbox.purge import Purger
from frsync.sandbox.redact import Redactor
from frsync.sandbox.routes import ADMIN_ROUTES
from frsync.sandbox.rules import STATUSES as FORCED_STATUSES
from frsync.sandbox.store import SandboxStore, TooManyRules

_FRAGMENT = Path(__file__).with_name("openapi.json")


def openapi_document() -> bytes:
    """The API's OpenAPI document with the admin API merged in, under its own tag."""
    document = json.loads(OPENAPI_DOCUMENT)
    fragment = json.loads(_FRAGMENT.read_bytes())
    document["paths"].update(fragment["paths"])
    for kind, entries in fragment.get("components", {}).items():
        document.setdefault("components", {}).setdefault(kind, {}).update(entries)
    document["tags"] = [*document.get("tags", []), *fragment["tags"]]
    # A fault rule can make any FR operation answer any of its statuses.
    forced = {"$ref": "#/components/responses/SandboxForced"}
    for path, item in document["paths"].items():
        if path.startswith("/fulfillment-requests"):
            for operation in item.values():
                if not isinstance(operation, dict) or "responses" not in operation:
                    continue  # path-level `parameters`
                for status in FORCED_STATUSES:
                    operation["responses"].setdefault(str(status), forced)
    return json.dumps(document).encode()


def routes() -> list[Route]:
    """The admin routes, and /openapi.json with them in it (listed before the API's own)."""
    merged = openapi_document()

    async def openapi(request: Request) -> Response:
        return Response(merged, media_type="application/json")

    return [Route("/openapi.json", openapi, methods=["GET"]), *ADMIN_ROUTES]


def middleware() -> list[Middleware]:
    return [Middleware(SandboxMiddleware, parts=_journal_parts)]


def _journal_parts(scope: Scope) -> JournalParts:
    state = scope["app"].state
    return state.sandbox_store, state.sandbox_redactor, state.sandbox_accounts


class _NoAnswer(Response):
    """Sends nothing: the connection is closed by SandboxMiddleware once the entry is written."""

    def __init__(self) -> None:
        super().__init__(status_code=204)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        return


async def _on_forced(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ForcedAnswer)
    return forced_response(exc, getattr(request.state, "request_id", None))


async def _on_drop(request: Request, exc: Exception) -> Response:
    return _NoAnswer()


async def _on_too_many_rules(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, TooManyRules)
    request_id = getattr(request.state, "request_id", None)
    return problem_response(
        409, HTTP_TITLES[409], "too-many-rules", exc.detail, request_id=request_id
    )


EXCEPTION_HANDLERS: dict[Any, Any] = {
    ForcedAnswer: _on_forced,
    DropConnection: _on_drop,
    TooManyRules: _on_too_many_rules,
}


def start(state: Any, store: SandboxStore) -> FaultHook:
    """In the lifespan, with the sandbox's SQL on the app's store: returns the fault hook."""
    state.sandbox_store = store
    state.sandbox_redactor = Redactor(store.known_tokens)
    state.sandbox_purger = Purger(store)
    state.sandbox_purger.kick()  # what a stopped worker may have left
    state.sandbox_accounts = Accounts(store)
    return FaultInjector(store, state.store, state.sandbox_accounts).apply


__all__ = ["EXCEPTION_HANDLERS", "middleware", "openapi_document", "routes", "start"]
