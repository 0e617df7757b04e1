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
import contextlib
import logging
from collections import defaultdict

from frsync.console.store import ConsoleStore, UsageCount
from frsync.models import now_ms

FLUSH_SECONDS = 2.0
TOKENS_PER_WRITE = 200  # about 1 ms of SQLite's write lock
KEEP_MINUTES = 120
log = logging.getLogger("frsync.console")


class UsageRecorder:
    def __init__(self) -> None:
        self._counts: defaultdict[tuple[int, int], list[int]] = defaultdict(lambda: [0, 0])
        self._last_used: dict[int, int] = {}

    def record(self, token_id: int, rate_limited: bool) -> None:
        """One request by this token (answered 429 when `rate_limited`): two dict updates."""
        now = now_ms()
        key = (token_id, now // 60_000)
        counts = self._counts.get(key)
        if counts is None:
            self._counts[key] = [1, int(rate_limited)]
        else:
            counts[0] += 1
            counts[1] += rate_limited
        self._last_used[token_id] = now

    async def flush(self, store: ConsoleStore) -> None:
        if not self._last_used:  # nothing since the last flush: no write at all
            return
        counts, last_used = self._counts, self._last_used
        self._counts, self._last_used = defaultdict(lambda: [0, 0]), {}
        by_token: defaultdict[int, list[UsageCount]] = defaultdict(list)
        for (token_id, minute), (requests, limited) in counts.items():
            by_token[token_id].append(UsageCount(token_id, minute, requests, limited))
        tokens = sorted(last_used)  # every counted token was used; in order, for the indexes
        keep_from = now_ms() // 60_000 - KEEP_MINUTES
        for start in range(0, len(tokens), TOKENS_PER_WRITE):
            chunk = tokens[start : start + TOKENS_PER_WRITE]
            try:
                rows = [row for token_id in chunk for row in by_token[token_id]]
                await store.add_usage(rows, {t: last_used[t] for t in chunk}, keep_from)
            except BaseException:  # what was written stays written; the rest is kept
                rest = set(tokens[start:])
                self._merge_back({key: n for key, n in counts.items() if key[0] in rest},
                                 {t: at for t, at in last_used.items() if t in rest})  # fmt: skip
                raise

    def _merge_back(
        self, counts: dict[tuple[int, int], list[int]], last_used: dict[int, int]
    ) -> None:
        for key, (requests, limited) in counts.items():
            mine = self._counts[key]
            mine[0] += requests
            mine[1] += limited
        for token_id, at in last_used.items():
            self._last_used[token_id] = max(at, self._last_used.get(token_id, 0))

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
