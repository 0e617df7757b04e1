"""The request journal: every FR-endpoint request, written to the database before its answer
leaves, so a test that got the answer can read the entry from any worker.

`SandboxMiddleware` wraps the FR routes in sandbox mode. It keeps a copy of the body as the
app reads it (up to 64 KiB), reads what the app left unread when a fault rule answered
first, records the entry when the answer starts, and drops the connection when a rule
said so.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

import msgspec
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from frsync.api.auth import PRINCIPAL_SCOPE_KEY, REFUSED_HASH_SCOPE_KEY
from frsync.domain import Principal
from frsync.errors import StoreBusy
from frsync.models import format_ms, now_ms
from frsync.sandbox.faults import ACCOUNT_SCOPE_KEY, DROP_SCOPE_KEY, Accounts
from frsync.sandbox.redact import Redactor
from frsync.sandbox.sql import JOURNAL_COLUMNS
from frsync.sandbox.store import JournalEntry, SandboxStore

BODY_KEEP = 64 * 1024
FR_PREFIX = "/fulfillment-requests"
# Set by frsync.server_protocol: closes this request's connection without an answer.
CLOSE_SCOPE_KEY = "frsync.close"
# How long to wait for a body the app never read (a rule answered before it was needed).
_LATE_BODY_SECONDS = 2.0
log = logging.getLogger("frsync.sandbox")
_ENTRY_OVERHEAD = 200  # bytes an entry holds beside its path, query and body, about


class _Body:
    """The request body as it goes by: kept while it is at most BODY_KEEP bytes."""

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self.chunks: list[bytes] = []
        self.size = 0
        self.done = False

    async def receive(self) -> Message:
        message = await self._receive()
        if message["type"] == "http.request":
            self._keep(message.get("body", b""))
            self.done = not message.get("more_body", False)
        elif message["type"] == "http.disconnect":
            self.done = True
        return message

    def _keep(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size <= BODY_KEEP:
            self.chunks.append(chunk)

    async def finish(self) -> None:
        """Read the rest when the app did not, up to just past BODY_KEEP."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_LATE_BODY_SECONDS):
                while not self.done and self.size <= BODY_KEEP:
                    await self.receive()

    def json(self) -> tuple[Any | None, bool]:
        """(the body decoded if it is JSON, truncated?)."""
        if self.size > BODY_KEEP:
            return None, True
        raw = b"".join(self.chunks)
        if not raw or not self.done:
            return None, False
        try:
            return msgspec.json.decode(raw), False
        except (msgspec.DecodeError, ValueError, RecursionError):
            return None, False


class SandboxMiddleware:
    def __init__(self, app: ASGIApp, *, parts: Callable[[Scope], JournalParts]) -> None:
        self.app = app
        self._parts = parts  # resolved per request: the store is born in the lifespan

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(FR_PREFIX):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        body = _Body(receive)
        recorded = False

        async def record(status: int | None) -> None:
            nonlocal recorded
            recorded = True
            if scope.get(PRINCIPAL_SCOPE_KEY) is not None:
                await body.finish()  # no body is kept without a valid token: not worth reading
            await self._record(scope, body, status, started)

        async def send_after_recording(message: Message) -> None:
            if message["type"] == "http.response.start":
                await record(message["status"])
            await send(message)

        await self.app(scope, body.receive, send_after_recording)
        if not recorded and scope.get(DROP_SCOPE_KEY):
            await record(None)
            await _drop(scope)

    async def _record(self, scope: Scope, body: _Body, status: int | None, started: float) -> None:
        try:
            store, redactor, accounts = self._parts(scope)
            entry = await _entry(scope, body, status, started, redactor, accounts)
            await store.record(entry)
        except StoreBusy as error:  # an outage, already logged by the store: no traceback
            log.warning("could not write the request journal entry: %s", error)
        except Exception:
            # The journal is a test aid: losing an entry must not lose the answer.
            log.exception("could not write the request journal entry")


JournalParts = tuple[SandboxStore, Redactor, Accounts]


async def _caller(scope: Scope, accounts: Accounts) -> tuple[Principal | None, int | None]:
    """Who sent the request, and their account: the token that authenticated it, or else the
    one a revoked token had (its 401s belong in its tenant's journal); never a guess."""
    principal: Principal | None = scope.get(PRINCIPAL_SCOPE_KEY)
    refused = scope.get(REFUSED_HASH_SCOPE_KEY)
    if principal is not None or refused is None:
        return principal, scope.get(ACCOUNT_SCOPE_KEY)
    return await accounts.of_revoked(refused) or (None, None)


async def _entry(
    scope: Scope,
    body: _Body,
    status: int | None,
    started: float,
    redactor: Redactor,
    accounts: Accounts,
) -> JournalEntry:
    authenticated = scope.get(PRINCIPAL_SCOPE_KEY) is not None
    decoded, truncated = body.json() if authenticated else (None, False)
    query = scope.get("query_string", b"").decode("latin-1")
    path, query, encoded = await redactor.redact(scope["path"], query, decoded)
    text = None if encoded is None else encoded.decode()
    caller, account = await _caller(scope, accounts)
    return JournalEntry(
        at=now_ms(),
        method=scope["method"],
        path=path,
        query=query,
        status=status,
        duration_ms=round((time.perf_counter() - started) * 1000, 3),
        request_id=scope.get("state", {}).get("request_id", ""),
        token_id=None if caller is None else caller.token_id,
        token_type=None if caller is None else caller.token_type,
        body=text,
        body_truncated=truncated,
        account_id=account,
        body_omitted=not authenticated,
        size=_ENTRY_OVERHEAD + len(path) + len(query) + len(text or ""),
    )


async def _drop(scope: Scope) -> None:
    close = scope.get(CLOSE_SCOPE_KEY)
    if close is None:
        return  # not served by frsync's protocol (an in-process test client): nothing to close
    close()
    # Let the transport report the closed connection, so the server knows not to answer.
    for _ in range(3):
        await asyncio.sleep(0)


def entry_json(row: tuple[Any, ...]) -> dict[str, Any]:
    """A journal row (id first, then JOURNAL_COLUMNS) as the admin API shows it."""
    values = dict(zip(("id", *JOURNAL_COLUMNS), row, strict=True))
    body = values["body"]
    entry = {
        "id": values["id"],
        "accountId": values["account_id"],
        "at": format_ms(values["at"]),
        "method": values["method"],
        "path": values["path"],
        "query": values["query"],
        "status": values["status"],
        "durationMs": values["duration_ms"],
        "requestId": values["request_id"],
        "tokenId": values["token_id"],
        "tokenType": values["token_type"],
        "body": None if body is None else msgspec.Raw(body.encode()),
    }
    if values["body_truncated"]:
        entry["bodyTruncated"] = True
    if values["body_omitted"]:
        entry["bodyOmitted"] = True
    return entry
