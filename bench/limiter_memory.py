"""Memory per active token: the limiter's own state, and the whole server's RSS.

1. In process, exact: `tracemalloc` around 100,000 hits of distinct keys on the in-memory
   limiter, keyed exactly as `api/auth.py` keys them, at the default 2/s, 40 burst (so no
   bucket expires during the count).
2. The real server (1 worker, default limits): VmRSS after 100,000 distinct valid tokens
   have each made one request, minus VmRSS before. This also holds the token cache's entry
   per token (`api/auth.py` TokenCache), so it is an upper bound for the limiter.
"""

from __future__ import annotations

import gc
import time
import tracemalloc
from dataclasses import dataclass
from pathlib import Path

from bench import dataset, load
from bench.servers import Server, status_kib
from frsync.ratelimit.memory import MemoryStore
from frsync.tokens import hash_token

TOKENS = dataset.MEMORY_TOKENS


@dataclass
class MemoryResult:
    limiter_bytes_per_token: float
    server_rss_before_mib: float
    server_rss_after_mib: float
    server_requests: int
    server_statuses: dict[str, int]

    @property
    def server_bytes_per_token(self) -> float:
        delta = (self.server_rss_after_mib - self.server_rss_before_mib) * 1024 * 1024
        return delta / TOKENS


def limiter_bytes_per_token() -> float:
    keys = [f"t:{hash_token(dataset.memory_token(k))[:16].hex()}" for k in range(TOKENS)]
    store = MemoryStore(clock=lambda: 1000.0)  # a frozen clock: nothing expires mid-count
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for key in keys:
        store.hit_now(key, 40, 2.0)
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    # The key strings are the caller's here; in the server each is built per request and
    # then kept only by the limiter's dict, so count them in.
    key_bytes = sum(key.__sizeof__() for key in keys)
    return (after - before + key_bytes) / TOKENS


def server_rss(server: Server, tokens_file: Path) -> MemoryResult:
    (worker,) = server.workers()
    load.wrk(server.base_url, 2, "healthz", str(tokens_file))  # warm the server up
    time.sleep(0.5)
    before = status_kib(worker, "VmRSS") / 1024
    summary, _ = load.wrk(server.base_url, 120, "once", str(tokens_file))
    time.sleep(0.5)
    after = status_kib(worker, "VmRSS") / 1024
    return MemoryResult(
        limiter_bytes_per_token=limiter_bytes_per_token(),
        server_rss_before_mib=before,
        server_rss_after_mib=after,
        server_requests=int(summary["requests"]),  # type: ignore[call-overload]
        server_statuses=dict(summary["statuses"]),  # type: ignore[call-overload]
    )
