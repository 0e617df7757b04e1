"""uvicorn's httptools protocol with the bounds it lacks: slow clients and too many connections.

uvicorn closes idle keep-alive connections, but a client that opens a connection and sends
its request head a byte at a time, or never finishes a body the app did not read, holds
the connection (and a file descriptor) forever. Here:

- the request head must be complete within `header_timeout` of the connection opening, or
  of the first byte of a later request on it; else the client gets a 408 and is closed;
- the body must be complete within `request_read_timeout` + 1 s after the head (the app
  answers a slow PATCH body with its own 408 at `request_read_timeout`; the extra second
  lets that answer out before the connection goes);
- one client address holds at most `max_connections_per_address` of this process's open
  connections; past that its new ones are closed at once, so one client cannot fill the
  process's `max_connections` and starve everyone else (addresses of proxies trusted with
  `forwarded_allow_ips` are exempt: their per-client limits are the proxy's job). With
  several workers, both caps are per process;
- from 90% of `max_connections`, each new connection first closes the connection that has
  been idle between requests (keep-alive) the longest: they are the cheapest to lose, a
  client reopens one when it next needs it. Past `max_connections` a new one is closed at
  once;
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
import ipaddress
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from frsync.api.problems import protocol_answer
from frsync.config import Settings
from frsync.contract import MAX_HEAD_BYTES

PROTOCOL = "frsync.server_protocol:GuardedHttpToolsProtocol"
_BODY_SLACK = 1.0
log = logging.getLogger("frsync.server")
_DEFAULTS = Settings()
_NEAR_CAP = 0.9  # from this share of max_connections, idle keep-alive connections go first
_WARN_EVERY = 10.0  # seconds between two warnings of one kind: a flood must not flood the log
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(slots=True)
class _Room:
    """One server's connections by client address, and its idle keep-alive ones, oldest
    first (a dict keeps insertion order)."""

    per_address: Counter[str] = field(default_factory=Counter)
    idle: dict[GuardedHttpToolsProtocol, None] = field(default_factory=dict)


def _room(server_state: Any) -> _Room:
    # Kept on uvicorn's per-server state, so servers sharing a process (tests) do not mix.
    room: _Room | None = getattr(server_state, "frsync_room", None)
    if room is None:
        room = _Room()
        server_state.frsync_room = room
    return room


def trusted_networks(allow_ips: str | None) -> tuple[Network, ...] | None:
    """The proxies in `forwarded_allow_ips` as networks; None when every address is ("*")."""
    networks = []
    for entry in (allow_ips or "").split(","):
        entry = entry.strip()
        if entry == "*":
            return None
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            continue  # a host name or a socket path: no address matches it here
    return tuple(networks)


_last_warned: dict[str, float] = {}


def _warn(kind: str, message: str, *args: object) -> None:
    now = time.monotonic()
    if now - _last_warned.get(kind, float("-inf")) >= _WARN_EVERY:
        _last_warned[kind] = now
        log.warning(message + " (said at most every %g s)", *args, _WARN_EVERY)


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """One connection; closed when its request head or body is late, or when over the cap."""

    header_timeout: ClassVar[float] = _DEFAULTS.header_timeout
    body_timeout: ClassVar[float] = _DEFAULTS.request_read_timeout + _BODY_SLACK
    max_connections: ClassVar[int] = _DEFAULTS.max_connections
    max_per_address: ClassVar[int] = _DEFAULTS.max_connections_per_address
    trusted: ClassVar[tuple[Network, ...] | None] = ()  # None: every address is a proxy
    max_head_bytes: ClassVar[int] = MAX_HEAD_BYTES
    _deadline: asyncio.TimerHandle | None = None
    # Bytes of the current request's head fed to the parser so far; None while the head is
    # complete (the body is the app's, bounded by the body timeout and max_body_bytes).
    _head_bytes: int | None = 0
    _heads_done = 0  # request heads completed on this connection
    _address: str | None = None  # counted in the room's per-address share while open

    @classmethod
    def configure(cls, settings: Settings) -> None:
        """Set this process's bounds (each uvicorn worker calls it once, before serving)."""
        cls.header_timeout = settings.header_timeout
        cls.body_timeout = settings.request_read_timeout + _BODY_SLACK
        cls.max_connections = settings.max_connections
        cls.max_per_address = settings.max_connections_per_address
        cls.trusted = trusted_networks(settings.forwarded_allow_ips)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        room = _room(self.server_state)
        if len(self.connections) >= self.max_connections * _NEAR_CAP and room.idle:
            oldest = next(iter(room.idle))  # the longest idle: cheapest to lose
            room.idle.pop(oldest)
            oldest._close_now()
        # Refusing here keeps file descriptors and memory bounded under a flood; the client
        # sees the connection close and may retry (or go to another host).
        if self._over_cap() or not self._take_share(room):
            self._close_now()
            return
        self._arm(self.header_timeout, head=True)

    def _over_cap(self) -> bool:
        if len(self.connections) <= self.max_connections:
            return False
        _warn("cap", "over %d open connections; closing new ones", self.max_connections)
        return True

    def _take_share(self, room: _Room) -> bool:
        """Count this connection in its address's share; False when the share is full."""
        address = self.client[0] if self.client else ""
        if self._is_proxy(address):
            return True
        if room.per_address[address] >= self.max_per_address:
            _warn("share", "an address holds %d connections; closing its new ones",
                  self.max_per_address)  # fmt: skip
            return False
        room.per_address[address] += 1
        self._address = address
        return True

    def _close_now(self) -> None:
        # Out of the count at once: its connection_lost comes a loop turn later, and until
        # then the next connections would see a cap that is not really reached.
        self.connections.discard(self)
        self.transport.close()

    def _is_proxy(self, address: str) -> bool:
        if self.trusted is None:
            return True
        if not self.trusted:
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.trusted)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        room = _room(self.server_state)
        room.idle.pop(self, None)
        if self._address is not None:
            room.per_address[self._address] -= 1
            if room.per_address[self._address] <= 0:
                del room.per_address[self._address]
            self._address = None
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.timeout_keep_alive_task is not None:  # now idle, waiting for a next request
            _room(self.server_state).idle[self] = None

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
        _room(self.server_state).idle.pop(self, None)
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
        "max_per_address": settings.max_connections_per_address,
        "trusted": trusted_networks(settings.forwarded_allow_ips),
    }
    return type("BoundHttpToolsProtocol", (GuardedHttpToolsProtocol,), bounds)
