"""The Overview: counts for the scope, syncs per hour over 24 hours, the top errors.

The counts are the count endpoint's own queries (`Store.count_fulfillment_requests` with
the same filters), so the page and `GET /fulfillment-requests/count` cannot disagree. Each
worker keeps an overview per scope for `CACHE_SECONDS`: a room of engineers polling one big
account costs one computation per worker per interval, and a number on the page is at most
that old (BENCHMARKS.md has the cost without the cache).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from frsync.domain import Principal
from frsync.models import now_ms
from frsync.store.base import FrQuery, Store
from frsync.store.console_base import ConsoleStore, ErrorCount, HourCount

CACHE_SECONDS = 2.0
HOURS = 24
TOP_ERRORS = 8
_HOUR_MS = 3_600_000
_MAX_CACHED = 1000

SYNCED = FrQuery(accounting_synced=True)
NOT_SYNCED = FrQuery(accounting_synced=False)
WITH_ERROR = FrQuery(has_accounting_error=True)


@dataclass(frozen=True, slots=True)
class Overview:
    synced: int
    not_synced: int
    with_error: int
    hours: list[HourCount]  # exactly HOURS entries, oldest first, the current hour last
    top_errors: list[ErrorCount]
    at: int  # when it was computed, ms since the epoch


async def compute(store: Store, console: ConsoleStore, principal: Principal) -> Overview:
    now = now_ms()
    first_hour = now // _HOUR_MS - HOURS + 1
    synced = await store.count_fulfillment_requests(principal, SYNCED)
    not_synced = await store.count_fulfillment_requests(principal, NOT_SYNCED)
    with_error = await store.count_fulfillment_requests(principal, WITH_ERROR)
    counted = {h.hour: h for h in await console.syncs_per_hour(principal, first_hour * _HOUR_MS)}
    hours = [counted.get(h, HourCount(h, 0, 0)) for h in range(first_hour, first_hour + HOURS)]
    top = await console.top_errors(principal, TOP_ERRORS)
    return Overview(synced, not_synced, with_error, hours, top, now)


class OverviewCache:
    """Overviews per scope (token type and scope id), each kept for `ttl` seconds."""

    def __init__(self, ttl: float = CACHE_SECONDS, clock: Callable[[], float] = time.monotonic):
        self._ttl = ttl
        self._clock = clock
        self._entries: dict[tuple[str, int], tuple[float, Overview]] = {}

    async def get(self, store: Store, console: ConsoleStore, principal: Principal) -> Overview:
        key = (principal.token_type, principal.scope_id)
        now = self._clock()
        entry = self._entries.get(key)
        if entry is not None and entry[0] > now:
            return entry[1]
        overview = await compute(store, console, principal)
        if len(self._entries) >= _MAX_CACHED:
            self._entries.clear()
        self._entries[key] = (now + self._ttl, overview)
        return overview
