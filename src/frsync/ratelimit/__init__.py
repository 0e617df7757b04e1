"""Rate-limit stores: token buckets behind one small interface, chosen by URL scheme.

`None` or `memory://` keeps buckets in this process; `shm:///path` shares them between the
processes of one host through a memory-mapped table (what `serve --workers N` uses without
Redis); `redis://`, `rediss://` and `unix://` share them through Redis, with in-process
buckets as the fallback while Redis is away.
"""

from __future__ import annotations

import time
from urllib.parse import urlsplit

from frsync.ratelimit.base import Decision, RateLimitStore
from frsync.ratelimit.memory import Clock, MemoryStore
from frsync.ratelimit.redis import RedisStore
from frsync.ratelimit.shared import SharedMemoryStore

__all__ = [
    "BACKENDS",
    "Decision",
    "MemoryStore",
    "RateLimitStore",
    "RedisStore",
    "SharedMemoryStore",
    "open_rate_limit_store",
]

BACKENDS: dict[str, type[MemoryStore] | type[SharedMemoryStore] | type[RedisStore]] = {
    "memory": MemoryStore,
    "shm": SharedMemoryStore,
    "redis": RedisStore,
    "rediss": RedisStore,
    "unix": RedisStore,
}


def open_rate_limit_store(
    url: str | None, *, timeout: float = 0.25, clock: Clock = time.monotonic
) -> RateLimitStore:
    """The store for `url`; nothing connects until the first hit.

    `timeout` bounds every call to a remote store; `clock` (monotonic seconds) drives local
    buckets and the reconnect backoff.
    """
    url = url or "memory://"
    scheme = urlsplit(url).scheme.lower()
    backend = BACKENDS.get(scheme)
    if backend is None:
        # Name the scheme only: the rest of the URL may hold a password.
        known = ", ".join(f"{name}://" for name in BACKENDS)
        raise ValueError(f"unsupported rate-limit store scheme {scheme!r}; use one of {known}")
    return backend.from_url(url, timeout=timeout, clock=clock)
