"""uvicorn's httptools protocol with the bounds it lacks: slow clients and too many connections.

uvicorn closes idle keep-alive connections, but a client that opens a connection and sends
its request head a byte at a time, or never finishes a body the app did not read, holds
the connection (and a file descriptor) forever. Here:

- the request head must be complete within `header_timeout` of the connection opening, or
  of the first byte of a later request on it; else the client gets a 408 and is closed;
- the body must be complete within `request_read_timeout` + 1 s after the head (the app
  answers a slow PATCH body with its own 408 at `request_read_timeout`; the extra second
  lets that answer out before the connection goes);
- past `max_connections` open connections in this process, a new one is closed at once;
- a request line plus headers longer than `MAX_HEAD_BYTES` (64 KiB, SPEC §5) is refused with
  a 431 and the connection closed. httptools itself has no bound: it gathers a header value
  of any length in memory before calling back, so the bytes are counted here, *before* they
  reach the parser, and bytes past the bound are never fed to it.

The protocol class is handed to uvicorn by import string (`PROTOCOL`): with --workers,
uvicorn pickles its config into spawned processes, where a class made at run time could not
be found. `configure(settings)` in each worker sets the bounds before it serves.
"""

from __future__ import annotations

import asyncio
import logging
from typing import ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from frsync.api.problems import protocol_answer
from frsync.config import Settings
from frsync.contract import MAX_HEAD_BYTES

PROTOCOL = "frsync.server_protocol:GuardedHttpToolsProtocol"
_BODY_SLACK = 1.0
log = logging.getLogger("frsync.server")
_DEFAULTS = Settings()


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """One connection; closed when its request head or body is late, or when over the cap."""

    header_timeout: ClassVar[float] = _DEFAULTS.header_timeout
    body_timeout: ClassVar[float] = _DEFAULTS.request_read_timeout + _BODY_SLACK
    max_connections: ClassVar[int] = _DEFAULTS.max_connections
    max_head_bytes: ClassVar[int] = MAX_HEAD_BYTES
    _deadline: asyncio.TimerHandle | None = None
    # Bytes of the current request's head fed to the parser so far; None while the head is
    # complete (the body is the app's, bounded by the body timeout and max_body_bytes).
    _head_bytes: int | None = 0
    _heads_done = 0  # request heads completed on this connection

    @classmethod
    def configure(cls, settings: Settings) -> None:
        """Set this process's bounds (each uvicorn worker calls it once, before serving)."""
        cls.header_timeout = settings.header_timeout
        cls.body_timeout = settings.request_read_timeout + _BODY_SLACK
        cls.max_connections = settings.max_connections

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            # Refusing here keeps file descriptors and memory bounded under a flood; the
            # client sees the connection close and may retry (or go to another host).
            log.warning("over %d open connections; closing a new one", self.max_connections)
            transport.close()
            return
        self._arm(self.header_timeout, head=True)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._head_bytes is None:
            super().data_received(data)
            return
        room = self.max_head_bytes - self._head_bytes
        if len(data) <= room:
            self._head_bytes += len(data)
            super().data_received(data)
            return
        # Feed only what fits; if the head ends within it, the rest is the body or the next
        # request and goes through this check again.
        heads_done = self._heads_done
        self._head_bytes += room
        if room:
            super().data_received(data[:room])
        if self._heads_done == heads_done:
            self._refuse_head()
        elif not self.transport.is_closing():
            self.data_received(data[room:])

    def _refuse_head(self) -> None:
        if self.transport.is_closing():
            return
        log.warning("request head over %d bytes; answered 431", self.max_head_bytes)
        # An earlier (pipelined) request may still be answering: then only hang up, as a
        # 431 written now would interleave with its answer.
        if self.cycle is None or self.cycle.response_complete:
            self.transport.write(protocol_answer(431))
        self._disarm()
        self.transport.close()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        # Sandbox fault rules may end a request with no answer at all (frsync.sandbox.journal).
        self.scope["frsync.close"] = self.transport.close  # type: ignore[typeddict-unknown-key]
        if self._deadline is None:  # a later request on a kept-alive connection
            self._arm(self.header_timeout, head=True)

    def on_headers_complete(self) -> None:
        self._head_bytes = None
        self._heads_done += 1
        self._arm(self.body_timeout, head=False)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        # The next request's head starts here. Bytes of it that came in the same read as
        # this request's end are not counted: one read (256 KiB at most) on top of the bound.
        self._head_bytes = 0
        super().on_message_complete()

    def _arm(self, seconds: float, *, head: bool) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._expire, head)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self, head: bool) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        # While the head is incomplete no answer has started, so a 408 cannot interleave
        # with one; once the app has the request, it owns the answer and we only hang up.
        if head and (self.cycle is None or self.cycle.response_complete):
            self.transport.write(protocol_answer(408))
        self.transport.close()


def protocol_for(settings: Settings) -> type[GuardedHttpToolsProtocol]:
    """A protocol class bound to `settings`, for a server run in this process (tests):
    pass it as uvicorn's `http=`. Leaves the shared class untouched."""
    bounds = {
        "header_timeout": settings.header_timeout,
        "body_timeout": settings.request_read_timeout + _BODY_SLACK,
        "max_connections": settings.max_connections,
    }
    return type("BoundHttpToolsProtocol", (GuardedHttpToolsProtocol,), bounds)
