"""The Overview: counts for the scope, syncs per hour over 24 hours, the top errors.

The counts are the count endpoint's own queries (`queries.count_sql` with the same
filters), so the page and `GET /fulfillment-requests/count` cannot disagree.

What each worker keeps (`OverviewCache`), and so how old a number can be:
- the whole overview per scope. Younger than `CACHE_SECONDS` (2 s) it is served as is;
  younger than `STALE_SECONDS` (30 s) it is served as is while a new one is computed in the
  background for the next request; older, or never computed, it is computed before the
  answer. A page polling every 10 s therefore shows numbers one poll old (at most about
  10 s plus one computation), and any number of browsers costs at most one computation per
  scope per worker per 2 s;
- the syncs of the hours that are over, per scope, for `PAST_HOURS_SECONDS` (5 min): an
  hour that is over gains no new syncs, so each computation reads only the current hour's
  history. (A sandbox reset, or a sync committed just after its hour ended, shows in the
  past hours within 5 minutes.)
BENCHMARKS.md has the cost with and without these.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from frsync.console.store import ConsoleStore, ErrorCount, HourCount
from frsync.domain import Principal
from frsync.models import now_ms
from frsync.store.base import FrQuery

CACHE_SECONDS = 2.0
STALE_SECONDS = 30.0
PAST_HOURS_SECONDS = 300.0
HOURS = 24
TOP_ERRORS = 8
_HOUR_MS = 3_600_000
_MAX_CACHED = 1000
T = TypeVar("T")
log = logging.getLogger("frsync.console")
Scope = tuple[str, int]

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


@dataclass(frozen=True, slots=True)
class _PastHours:
    until: float  # clock time it may be used until
    current_hour: int  # the hour that was current: every earlier one is in `hours`
    hours: dict[int, HourCount]


async def _all(*reads: Coroutine[Any, Any, Any]) -> list[Any]:
    """Run reads side by side (each on its own connection where the store has several).
    A TaskGroup, not gather: when one fails the others are cancelled, not left running
    against a store that may be closing; the caller sees that first failure (StoreBusy…)."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(read) for read in reads]
    except ExceptionGroup as failed:
        raise failed.exceptions[0] from None
    return [task.result() for task in tasks]


class OverviewCache:
    """Overviews per scope (token type and scope id), and their past hours; see above."""

    def __init__(
        self,
        ttl: float = CACHE_SECONDS,
        past_hours_ttl: float = PAST_HOURS_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        stale_ttl: float = STALE_SECONDS,
    ) -> None:
        self._ttl = ttl
        self._stale_ttl = max(ttl, stale_ttl)
        self._past_ttl = past_hours_ttl
        self._clock = clock
        self._entries: dict[Scope, tuple[float, Overview]] = {}  # (computed at, overview)
        self._past: dict[Scope, _PastHours] = {}
        self._refreshing: dict[Scope, asyncio.Task[Overview]] = {}

    async def get(self, console: ConsoleStore, principal: Principal) -> Overview:
        """Fresh (< ttl): as kept. Stale but recent (< stale_ttl): as kept, and a refresh
        starts in the background for the next request. Older or missing: computed now.
        One computation per scope at a time, whoever asks."""
        key = (principal.token_type, principal.scope_id)
        entry = self._entries.get(key)
        age = None if entry is None else self._clock() - entry[0]
        refresh = self._refreshing.get(key)
        if refresh is None and (age is None or age >= self._ttl):
            refresh = asyncio.create_task(self._refresh(console, principal, key))
            refresh.add_done_callback(_note_failure)
            self._refreshing[key] = refresh
        if entry is not None and age is not None and age < self._stale_ttl:
            return entry[1]
        assert refresh is not None
        return await asyncio.shield(refresh)  # a cancelled request leaves it to finish

    async def _refresh(self, console: ConsoleStore, principal: Principal, key: Scope) -> Overview:
        try:
            overview = await self._compute(console, principal, key)
            _bounded(self._entries)[key] = (self._clock(), overview)
            return overview
        finally:
            self._refreshing.pop(key, None)

    async def close(self) -> None:
        """Cancel refreshes still running (at shutdown, before the store closes)."""
        tasks = list(self._refreshing.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _compute(self, console: ConsoleStore, principal: Principal, key: Scope) -> Overview:
        now = now_ms()
        current = now // _HOUR_MS
        past = self._past.get(key)
        fresh = past is not None and past.current_hour == current and past.until > self._clock()
        since = current if fresh else current - HOURS + 1
        synced, not_synced, with_error, hours, top = await _all(
            console.count(principal, SYNCED),
            console.count(principal, NOT_SYNCED),
            console.count(principal, WITH_ERROR),
            console.syncs_per_hour(principal, since * _HOUR_MS),
            console.top_errors(principal, TOP_ERRORS),
        )
        counted = {h.hour: h for h in hours}
        if fresh and past is not None:
            counted = {**past.hours, **counted}
        else:
            before = {h: c for h, c in counted.items() if h < current}
            _bounded(self._past)[key] = _PastHours(self._clock() + self._past_ttl, current, before)
        span = range(current - HOURS + 1, current + 1)
        return Overview(
            synced,
            not_synced,
            with_error,
            [counted.get(h, HourCount(h, 0, 0)) for h in span],
            top,
            now,
        )


def _note_failure(task: asyncio.Task[Overview]) -> None:
    # A background refresh that nobody awaited: its failure is logged, not lost.
    if not task.cancelled() and task.exception() is not None:
        log.warning("overview not refreshed: %s", type(task.exception()).__name__)


def _bounded(cache: dict[Scope, T]) -> dict[Scope, T]:
    if len(cache) >= _MAX_CACHED:  # simplest bound; a refill costs one computation per scope
        cache.clear()
    return cache
