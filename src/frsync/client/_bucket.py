"""A client-side mirror of the server's per-token bucket, so requests wait here, not at a 429.

The server gives each token a bucket of `X-Auth-Pool-Size` requests refilled at
`X-Auth-Replenished-Per-Second` (40 and 2 by default). This bucket starts with the same shape
and is corrected from the `X-Auth-Pool-*` headers of every answer, so it also notices when
another process spends the same token.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping

__all__ = ["ClientBucket"]

Clock = Callable[[], float]
Sleep = Callable[[float], None]

# Refilling is float arithmetic: a level a rounding error short of one token counts as one,
# or the wait for it would be too small to move the clock and the bucket would spin.
_EPSILON = 1e-9


class ClientBucket:
    """Token bucket that blocks (through the injected `sleep`) until a request fits.

    One request at a time: `wait_for_room`, send, `spend`, then `observe` the answer.
    """

    def __init__(
        self,
        capacity: int = 40,
        rate: float = 2.0,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
    ) -> None:
        if capacity < 1 or rate <= 0:
            raise ValueError("a bucket needs capacity >= 1 and rate > 0")
        self.capacity = capacity
        self.rate = rate
        self._clock = clock
        self._sleep = sleep
        # Assume a full bucket until the first answer says otherwise.
        self._level = float(capacity)
        self._updated = clock()
        self._blocked_until = -math.inf

    @property
    def level(self) -> float:
        """Requests that fit right now, as far as this client knows."""
        self._refill()
        return self._level

    def wait_time(self) -> float:
        """Seconds until one request fits."""
        self._refill()
        short = 1.0 - self._level
        until_token = short / self.rate if short > _EPSILON else 0.0
        until_unblocked = max(0.0, self._blocked_until - self._updated)
        return max(until_token, until_unblocked)

    def wait_for_room(self) -> float:
        """Wait until one request fits; return the seconds waited. `spend` takes the token."""
        waited = 0.0
        while (delay := self.wait_time()) > 0:
            self._sleep(delay)
            waited += delay
        return waited

    def spend(self) -> None:
        """Take one token, once the request's answer is in.

        Not when it is sent: while the server's bucket is full, refilling is lost there until
        the request arrives, so counting from the send would put this copy ahead of the server
        by the request's travel time. Counting from the answer never does.
        """
        self._refill()
        self._level -= 1.0

    def observe(self, headers: Mapping[str, str]) -> None:
        """Correct the bucket from an answer's `X-Auth-Pool-*` headers, when it has them."""
        size = _number(headers.get("x-auth-pool-size"))
        used = _number(headers.get("x-auth-pool-used"))
        rate = _number(headers.get("x-auth-replenished-per-second"))
        self._refill()
        if rate is not None and rate > 0:
            self.rate = rate
        if size is not None and size >= 1:
            self.capacity = int(size)
            self._level = min(self._level, float(self.capacity))
        if used is not None:
            reported = max(0.0, self.capacity - used)
            # The headers are whole numbers: a gap under one token is their rounding, and our
            # fractional estimate is the better one. A larger gap means someone else spends
            # this token (or the server restarted), so the server is right.
            if abs(reported - self._level) >= 1.0:
                self._level = reported

    def block_for(self, seconds: float) -> None:
        """After a 429: nothing fits for `seconds`, and the bucket is empty."""
        self._refill()
        self._level = min(self._level, 0.0)
        self._blocked_until = max(self._blocked_until, self._updated + seconds)

    def _refill(self) -> None:
        now = self._clock()
        elapsed = max(0.0, now - self._updated)
        self._level = min(float(self.capacity), self._level + elapsed * self.rate)
        self._updated = now


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None
