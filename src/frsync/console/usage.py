"""Per-token usage for the console's Tokens view: requests, 429s and last use.

Each worker counts in memory, per token and minute (a dict update per request, no I/O on
the request path), and every `FLUSH_SECONDS` adds its counts to the `token_usage` and
`token_last_used` tables, so the view sums every worker's. The view is therefore at most
`FLUSH_SECONDS` (plus the writes) behind. Counts that could not be written (store busy) are
kept and added on the next flush; counts of the last `KEEP_MINUTES` are kept in the table,
older rows are dropped.

A flush writes `TOKENS_PER_WRITE` tokens per transaction. On SQLite a transaction holds the
one write lock, and one for 2,000 tokens (a thousand tokens at 2 req/s, the platform team's
day) held it 8-23 ms every two seconds per worker: every PATCH waited behind it, and that
wait was the p99 at 1,000 PATCH/s.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging

from frsync.console.store import ConsoleStore, UsageCount
from frsync.models import now_ms

FLUSH_SECONDS = 2.0
TOKENS_PER_WRITE = 200  # about 1 ms of SQLite's write lock
KEEP_MINUTES = 120
log = logging.getLogger("frsync.console")


class UsageRecorder:
    def __init__(self) -> None:
        # (token, minute) → requests and → 429s. Plain ints, no list per key: a list lives
        # until the flush, long enough to reach the garbage collector's oldest generation,
        # and each one there brings the next full collection (the event loop stopped) nearer.
        self._requests: dict[tuple[int, int], int] = {}
        self._limited: dict[tuple[int, int], int] = {}
        self._last_used: dict[int, int] = {}

    def record(self, token_id: int, rate_limited: bool) -> None:
        """One request by this token (answered 429 when `rate_limited`): two dict updates."""
        now = now_ms()
        key = (token_id, now // 60_000)
        self._requests[key] = self._requests.get(key, 0) + 1
        if rate_limited:
            self._limited[key] = self._limited.get(key, 0) + 1
        self._last_used[token_id] = now

    async def flush(self, store: ConsoleStore) -> None:
        if not self._last_used:  # nothing since the last flush: no write at all
            return
        requests, limited, last_used = self._requests, self._limited, self._last_used
        self._requests, self._limited, self._last_used = {}, {}, {}
        keys = sorted(requests)  # by token, then minute; every key's token is in `last_used`
        tokens = sorted(last_used)  # in order, for the indexes
        keep_from = now_ms() // 60_000 - KEEP_MINUTES
        done = 0  # keys written
        for start in range(0, len(tokens), TOKENS_PER_WRITE):
            chunk = tokens[start : start + TOKENS_PER_WRITE]
            upto = bisect.bisect_left(keys, (chunk[-1] + 1,))  # the chunk's tokens' keys
            try:
                rows = [UsageCount(t, m, requests[t, m], limited.get((t, m), 0))
                        for t, m in keys[done:upto]]  # fmt: skip
                await store.add_usage(rows, {t: last_used[t] for t in chunk}, keep_from)
            except BaseException:  # what was written stays written; the rest is kept
                self._merge_back(keys[done:], requests, limited, tokens[start:], last_used)
                raise
            done = upto

    def _merge_back(
        self,
        keys: list[tuple[int, int]],
        requests: dict[tuple[int, int], int],
        limited: dict[tuple[int, int], int],
        tokens: list[int],
        last_used: dict[int, int],
    ) -> None:
        for key in keys:
            self._requests[key] = self._requests.get(key, 0) + requests[key]
            if key in limited:
                self._limited[key] = self._limited.get(key, 0) + limited[key]
        for token_id in tokens:
            self._last_used[token_id] = max(last_used[token_id], self._last_used.get(token_id, 0))

    async def run(self, store: ConsoleStore) -> None:
        """Flush every FLUSH_SECONDS until cancelled, then once more."""
        try:
            while True:
                await asyncio.sleep(FLUSH_SECONDS)
                await self._flush_logged(store)
        finally:
            with contextlib.suppress(Exception):
                await self._flush_logged(store)

    async def _flush_logged(self, store: ConsoleStore) -> None:
        try:
            await self.flush(store)
        except Exception as error:  # the loop must outlive any failure of one flush
            log.warning(
                "token usage not written yet (%s); kept for the next flush", type(error).__name__
            )
