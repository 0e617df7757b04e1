"""The rate-limit store interface: one token bucket per key, checked and charged at once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one `hit`, carrying everything the response headers need."""

    allowed: bool
    size: int  # bucket capacity            -> X-Auth-Pool-Size
    used: int  # tokens in use after the hit -> X-Auth-Pool-Used
    rate: float  # refill per second        -> X-Auth-Replenished-Per-Second
    retry_after: int  # whole seconds until one token is free; 0 when allowed


class RateLimitStore(Protocol):
    """Token buckets keyed by an opaque string (a token hash or a client address)."""

    async def hit(self, key: str, capacity: int, rate: float) -> Decision:
        """Take one token from `key`'s bucket if there is one; a refused hit costs nothing."""
        ...

    async def reset(self) -> None:
        """Every bucket full again (sandbox reset)."""
        ...

    async def status(self) -> str:
        """'ok', or 'degraded' when a shared store is unreachable and buckets are local."""
        ...

    async def close(self) -> None: ...
