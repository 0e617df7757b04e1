"""In-process token buckets, one float per key (GCRA), and the bucket arithmetic both stores share.

GCRA, the generic cell rate algorithm, is a token bucket of `capacity` refilled at `rate` per
second, stored as a single number per key: the *theoretical arrival time* (TAT), the moment the
bucket will be full again. Each admitted hit pushes the TAT one emission interval (1/rate) later;
a hit is refused when that would put the TAT more than capacity/rate seconds past now. So the
tokens in use at any moment are `(TAT - now) * rate`, and a key whose TAT has passed holds a
full bucket — exactly as if it had never been seen, which is what makes pruning safe.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from frsync.ratelimit.base import Decision

Clock = Callable[[], float]  # monotonic seconds

# Times are floats summed hit after hit; a microsecond of slack keeps a hit that lands exactly
# on a token boundary on the side an exact token bucket would put it.
EPSILON = 1e-6
# Sweep expired keys whenever the table has doubled since the last sweep (amortized O(1) per
# new key), and at least this often so a quiet process hands memory back too.
PRUNE_MIN_KEYS = 1024
PRUNE_INTERVAL = 60.0


def check_limits(capacity: int, rate: float) -> None:
    """Refuse limits that would make a bucket meaningless (nothing admitted, or no refill)."""
    if capacity < 1 or not (rate > 0 and math.isfinite(rate)):
        raise ValueError(f"bucket needs capacity >= 1 and a finite rate > 0, not {capacity}/{rate}")


def decide(allowed: bool, ahead: float, capacity: int, rate: float) -> Decision:
    """Turn one GCRA step into the headers' numbers.

    `ahead` is how far the key's TAT is past now, in seconds: after the hit when it was
    allowed, unchanged when it was refused.
    """
    if allowed:
        used = min(capacity, max(0, math.ceil((ahead - EPSILON) * rate)))
        return Decision(allowed=True, size=capacity, used=used, rate=rate, retry_after=0)
    # The next hit fits once the TAT plus one interval is within capacity/rate of the clock.
    wait = ahead + (1 - capacity) / rate
    retry_after = max(1, math.ceil(wait - EPSILON))
    return Decision(allowed=False, size=capacity, used=capacity, rate=rate, retry_after=retry_after)


def step(tat: float, now: float, capacity: int, rate: float) -> tuple[float, Decision]:
    """One hit against a bucket whose TAT is `tat`: the TAT to store and the decision.

    The Lua script in `redis.py` is this same function; change them together.
    """
    base = max(tat, now)
    new_tat = base + 1 / rate
    if new_tat - now > capacity / rate + EPSILON:
        return tat, decide(False, base - now, capacity, rate)
    return new_tat, decide(True, new_tat - now, capacity, rate)


class MemoryStore:
    """Token buckets held in this process: exact, lock-free, shared with nobody else."""

    def __init__(self, *, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        # key -> TAT. A plain dict of floats: about 60 bytes per key beyond the key string.
        self._tat: dict[str, float] = {}
        self._prune_at = PRUNE_MIN_KEYS
        self._next_sweep = clock() + PRUNE_INTERVAL

    @classmethod
    def from_url(
        cls, url: str, *, timeout: float = 0.25, clock: Clock = time.monotonic
    ) -> MemoryStore:
        """Build from `memory://`; the URL carries nothing and there is no I/O to time out."""
        return cls(clock=clock)

    def __len__(self) -> int:
        """Buckets currently held (expired ones linger until the next sweep)."""
        return len(self._tat)

    async def hit(self, key: str, capacity: int, rate: float) -> Decision:
        """Take one token from `key`'s bucket if there is one; a refused hit costs nothing."""
        return self.hit_now(key, capacity, rate)

    def hit_now(self, key: str, capacity: int, rate: float) -> Decision:
        """The synchronous core of `hit`."""
        check_limits(capacity, rate)
        now = self._clock()
        self._maybe_prune(now)
        # No await between this read and the write below: under asyncio nothing else runs in
        # between, so check-and-charge is atomic without a lock.
        tat, decision = step(self._tat.get(key, now), now, capacity, rate)
        if decision.allowed:
            self._tat[key] = tat
        return decision

    async def reset(self) -> None:
        """Every bucket full again: a key not held is a full bucket."""
        self._tat.clear()

    async def status(self) -> str:
        """Always 'ok': there is nothing to reach."""
        return "ok"

    async def close(self) -> None:
        """Drop every bucket."""
        self._tat.clear()

    def _maybe_prune(self, now: float) -> None:
        if len(self._tat) < self._prune_at and now < self._next_sweep:
            return
        # Rebuild rather than delete in place: CPython never shrinks a dict's table on delete,
        # so only a fresh dict hands the memory of 100k one-off keys back.
        self._tat = {key: tat for key, tat in self._tat.items() if tat > now}
        self._prune_at = max(PRUNE_MIN_KEYS, 2 * len(self._tat))
        self._next_sweep = now + PRUNE_INTERVAL
