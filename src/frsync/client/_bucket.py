"""A client-side mirror of the server's per-token bucket, so requests wait here, not at a 429.

The server gives each token a bucket of `X-Auth-Pool-Size` requests refilled at
`X-Auth-Replenished-Per-Second` (40 and 2 by default). This bucket starts with the same shape
and is corrected from the `X-Auth-Pool-*` headers of every answer, so it also notices when
another process spends the same token.

It is shared: every thread and task of a client, and every client of the same token and base
URL in the process (`shared_bucket`), takes its turns from one bucket. It never sleeps itself,
so one bucket serves blocking and asyncio callers alike:

1. `reserve()` (under the lock) queues the caller and returns its ticket;
2. `poll(ticket)` (under the lock) either lets it go (0.0: it is now in flight) or says how
   long to sleep before asking again; the caller sleeps *outside* the lock, its own way;
3. `settle(ticket, headers)` takes the token once the answer is in, and reads the headers;
   `cancel(ticket)` gives back a turn not taken (the caller was interrupted while waiting).

A request in flight counts as spent until its answer settles it, so concurrent callers
together never send more than the bucket holds.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

__all__ = ["ClientBucket", "Clock", "Ticket", "shared_bucket"]

Clock = Callable[[], float]

# Refilling is float arithmetic: a level a rounding error short of one token counts as one,
# or the wait for it would be too small to move the clock and the bucket would spin.
_EPSILON = 1e-9


@dataclass(eq=False, slots=True)
class Ticket:
    """One caller's turn: queued, then in flight from the moment `poll` lets it go."""

    sent_at: float | None = field(default=None)
    settled_before: int = 0  # the bucket's count of settled requests when this one was sent


class ClientBucket:
    """Token bucket shared by every caller of one token; all methods are thread-safe."""

    def __init__(self, capacity: int = 40, rate: float = 2.0, *, clock: Clock = time.monotonic):
        if capacity < 1 or rate <= 0:
            raise ValueError("a bucket needs capacity >= 1 and rate > 0")
        self.capacity = capacity
        self.rate = rate
        self._clock = clock
        self._lock = threading.Lock()
        # Assume a full bucket until the first answer says otherwise.
        self._level = float(capacity)  # tokens left once every settled request is counted
        self._updated = clock()
        self._blocked_until = -math.inf
        self._waiting: dict[Ticket, None] = {}  # queued callers, in arrival order
        self._in_flight = 0
        self._settled = 0

    @property
    def level(self) -> float:
        """Requests that fit right now, as far as this client knows."""
        with self._lock:
            self._refill()
            return self._level - self._in_flight

    def reserve(self) -> Ticket:
        """Queue one request; `poll` the ticket until it may go."""
        ticket = Ticket()
        with self._lock:
            self._waiting[ticket] = None
        return ticket

    def poll(self, ticket: Ticket) -> float:
        """0.0: send now (the ticket is in flight); else seconds to sleep before asking again.

        A ticket goes when there is room for it and for every ticket queued before it, so
        callers go in turn, and a late waker never holds up those behind it.
        """
        with self._lock:
            self._refill()
            ahead = list(self._waiting).index(ticket)
            short = ahead + 1.0 - (self._level - self._in_flight)
            until_token = short / self.rate if short > _EPSILON else 0.0
            delay = max(until_token, self._blocked_until - self._updated)
            if delay > 0:
                return delay
            del self._waiting[ticket]
            self._in_flight += 1
            ticket.sent_at, ticket.settled_before = self._updated, self._settled
            return 0.0

    def settle(self, ticket: Ticket, headers: Mapping[str, str] | None = None) -> None:
        """The answer (or a failure that may have reached the server) is in: take the token.

        Not when it is sent: while the server's bucket is full, refilling is lost there until
        the request arrives, so counting from the send would put this copy ahead of the server
        by the request's travel time. Counting from the answer never does.
        """
        with self._lock:
            if ticket.sent_at is None:  # never sent: nothing to take
                self._waiting.pop(ticket, None)
                return
            self._refill()
            self._in_flight -= 1
            self._level -= 1.0
            travel = self._updated - ticket.sent_at
            # Answers overtake each other: one settled while this was in flight may have
            # reached the server later, so this answer's count can be older than ours.
            current = ticket.settled_before == self._settled
            self._settled += 1
            ticket.sent_at = None
            if headers is not None:
                self._observe(headers, travel, raise_ok=current)

    def cancel(self, ticket: Ticket) -> None:
        """The caller gave up its turn (interrupted): a queued ticket leaves, a sent one
        counts as spent (it may have reached the server)."""
        self.settle(ticket)

    def observe(self, headers: Mapping[str, str]) -> None:
        """Correct the bucket from an answer's `X-Auth-Pool-*` headers, when it has them."""
        with self._lock:
            self._refill()
            self._observe(headers, 0.0, raise_ok=True)

    def block_for(self, seconds: float) -> None:
        """After a 429: nothing fits for `seconds`, and the bucket is empty."""
        with self._lock:
            self._refill()
            self._level = min(self._level, 0.0)
            self._blocked_until = max(self._blocked_until, self._updated + seconds)

    def _observe(self, headers: Mapping[str, str], travel: float, *, raise_ok: bool) -> None:
        size = _number(headers.get("x-auth-pool-size"))
        used = _number(headers.get("x-auth-pool-used"))
        rate = _number(headers.get("x-auth-replenished-per-second"))
        if rate is not None and rate > 0:
            self.rate = rate
        reshaped = size is not None and size >= 1 and int(size) != self.capacity
        if size is not None and size >= 1:
            self.capacity = int(size)
            self._level = min(self._level, float(self.capacity))
        if used is None:
            return
        reported = max(0.0, self.capacity - used)
        if reshaped:  # our guess of the shape was wrong, so was our level
            self._level = reported
            return
        # The server counted this answer when the request arrived and may have counted some
        # of those still in flight; it has not seen the refill since. Within that (and the
        # headers' rounding to whole numbers) the two agree and our fractional estimate is
        # the better one. Further apart, someone else spends this token (or the server
        # restarted), and the server is right; but a count that may be stale only lowers ours.
        low = self._level - self._in_flight - 1.0 - self.rate * travel
        if reported < low - _EPSILON or (raise_ok and reported >= self._level + 1.0):
            self._level = reported

    def _refill(self) -> None:
        now = self._clock()
        elapsed = max(0.0, now - self._updated)
        self._level = min(float(self.capacity), self._level + elapsed * self.rate)
        self._updated = now


_shared: weakref.WeakValueDictionary[tuple[str, str, Clock], ClientBucket] = (
    weakref.WeakValueDictionary()
)
_shared_lock = threading.Lock()


def shared_bucket(token: str, base_url: str, clock: Clock) -> ClientBucket:
    """The process-wide bucket of `token` at `base_url` (one per clock), made on first use.

    Clients of one token in one process then pace as one. The token is kept only as a hash.
    """
    key = (hashlib.sha256(token.encode()).hexdigest(), base_url.rstrip("/"), clock)
    with _shared_lock:
        bucket = _shared.get(key)
        if bucket is None:
            bucket = _shared[key] = ClientBucket(clock=clock)
        return bucket


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None
