"""The console's Overview at 1,000,000 FRs in one account (SQLite), and its other views.

    python bench/console_overview.py [--size 1000000] [--iterations 20] [--reload]

Builds (once, cached under bench/.data/) a database with one account of `size` FRs — 70%
synced, 25% not yet synced, 5% with one of eight accounting errors — plus a second, small
account, and 40,000 accounting-history entries over the last 24 hours (85% synced, 15%
failed). Then, through the real app in-process (httpx.ASGITransport, a signed-in console
session, templates rendered), times:

- the Overview's live part (`GET /console/live`: three counts, syncs per hour, top errors,
  the SVG chart) with the per-worker cache off (every request computes) and on;
- each of its queries alone; the Errors view, an FR page and the Tokens view.

Writes the "Console" section of BENCHMARKS.md (between its marker comments).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import re
import sqlite3
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import httpx

from frsync.app import create_app
from frsync.config import Settings
from frsync.console.overview import NOT_SYNCED, SYNCED, WITH_ERROR, OverviewCache
from frsync.domain import Principal
from frsync.models import now_ms
from frsync.store import migrate
from frsync.store.rows import (
    ACCOUNTING_ROW_COLUMNS,
    HISTORY_COLUMNS,
    WIDE_COLUMNS,
    split_fr_rows,
)
from frsync.tokens import hash_token

HERE = Path(__file__).parent
DATA = HERE / ".data"
REPORT = HERE.parent / "BENCHMARKS.md"
BEGIN, END = "<!-- console-overview: begin -->", "<!-- console-overview: end -->"
TOKENS = {
    "account": "bench-console-account-1-xxxxxxxx",
    "source": "bench-console-source-10-xxxxxxx",
    "operator": "bench-console-operator-xxxxxxxxx",
}
ERRORS = [
    "Vendor 'Trailhead Supply' is not mapped to a supplier in QuickBooks",
    "Item SKU not found in NetSuite item list",
    "Request rejected due to invalid Id",
    "Customer 'Walk-in' is inactive in Xero",
    "Accounting period is closed for this date",
    "Duplicate document number",
    "Tax code missing in QuickBooks",
    "Currency EUR is not enabled in this company file",
]
HISTORY_24H = 40_000
DAY_MS = 86_400_000


_SCOPES = {"account": 1, "source": 10, "operator": 0}


def _scope_rows() -> dict[str, list[tuple[object, ...]]]:
    return {
        "accounts": [(1, "Acme Outdoor"), (2, "Birch & Pine")],
        "sources": [(10, 1, "Trailhead Supply"), (11, 1, "Summit Wholesale"),
                    (30, 2, "Hearth Goods")],
        "channels": [(20, 1, "Acme Shopify"), (21, 1, "Acme Amazon"), (40, 2, "Birch Etsy")],
    }  # fmt: skip


def _frs(size: int, rng: random.Random, now: int) -> Iterator[tuple[object, ...]]:
    year = 365 * DAY_MS
    for fr_id in range(1, size + 1 + 10_000):
        account, source, channel = (
            (1, 10 + fr_id % 2, 20 + fr_id % 2) if fr_id <= size else (2, 30, 40)
        )
        generated = now - year + fr_id * (year // (size + 10_000))
        roll = rng.random()
        synced, external, error = None, None, None
        if roll < 0.70:
            synced, external = 1, f"PO-{fr_id}"
        elif roll < 0.75:
            synced, error = 0, ERRORS[min(int(rng.expovariate(0.6)), len(ERRORS) - 1)]
        updated = generated + rng.randrange(DAY_MS)
        yield (fr_id, f"FR-{fr_id}", account, source, 5_000_000 + fr_id, channel, "Processed",
               generated, generated, None, updated, synced, external, error,
               updated if synced else None)  # fmt: skip


def _history(size: int, rng: random.Random, now: int) -> Iterator[tuple[object, ...]]:
    for n in range(HISTORY_24H):
        fr_id = rng.randrange(1, size + 1)
        at = now - DAY_MS + n * (DAY_MS // HISTORY_24H)
        if rng.random() < 0.85:
            changes = {
                "accountingSynced": {"before": None, "after": True},
                "externalAccountingId": {"before": None, "after": f"PO-{fr_id}"},
            }
        else:
            changes = {
                "accountingSynced": {"before": None, "after": False},
                "accountingError": {"before": None, "after": rng.choice(ERRORS)},
            }
        yield (fr_id, at, 1, "account", f"bench{n:08d}", json.dumps(changes))


def _fr_tables(
    frs: list[tuple[Any, ...]],
) -> list[tuple[str, tuple[str, ...], list[tuple[Any, ...]]]]:
    """Rows of FR_COLUMNS as the rows of the FRs' two tables (store/schema.py)."""
    wide, accounting = split_fr_rows(frs)
    return [("fulfillment_requests", WIDE_COLUMNS, wide),
            ("fulfillment_request_accounting", ACCOUNTING_ROW_COLUMNS, accounting)]  # fmt: skip


def build(size: int, reload: bool) -> tuple[Path, float]:
    """The database (built once) and how long building it took, in seconds."""
    DATA.mkdir(parents=True, exist_ok=True)
    path, stamp = DATA / f"console-{size}.db", DATA / f"console-{size}.json"
    if path.exists() and stamp.exists() and not reload:
        return path, json.loads(stamp.read_text())["seconds"]
    for leftover in DATA.glob(f"console-{size}.db*"):
        leftover.unlink()
    started = time.perf_counter()
    migrate(f"sqlite:///{path}")
    rng, now = random.Random(13), now_ms()
    db = sqlite3.connect(path)
    db.executescript("PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF;")
    with db:
        db.executemany(
            "INSERT INTO accounts VALUES (?, ?)", [(1, "Acme Outdoor"), (2, "Birch & Pine")]
        )
        db.executemany("INSERT INTO sources VALUES (?, ?, ?)",
                       [(10, 1, "Trailhead Supply"), (11, 1, "Summit Wholesale"),
                        (30, 2, "Hearth Goods")])  # fmt: skip
        db.executemany("INSERT INTO channels VALUES (?, ?, ?)",
                       [(20, 1, "Acme Shopify"), (21, 1, "Acme Amazon"),
                        (40, 2, "Birch Etsy")])  # fmt: skip
        for table, columns, rows in _fr_tables(list(_frs(size, rng, now))):
            marks = ", ".join("?" * len(columns))
            db.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)
        db.executemany(
            "INSERT INTO accounting_history (fulfillment_request_id, at, token_id, token_type,"
            " request_id, changes) VALUES (?, ?, ?, ?, ?, ?)", _history(size, rng, now),
        )  # fmt: skip
        db.executemany(
            "INSERT INTO api_tokens (token_hash, token_type, scope_id, label, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            [(hash_token(t), kind, _SCOPES[kind], f"bench {kind}", now)
             for kind, t in TOKENS.items()],
        )  # fmt: skip
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    seconds = time.perf_counter() - started
    stamp.write_text(json.dumps({"seconds": seconds}))
    return path, seconds


async def build_postgres(url: str, size: int) -> tuple[str, float]:
    """A fresh PostgreSQL database `frsync_bench_console` with the same data."""
    import asyncpg

    started = time.perf_counter()
    name = "frsync_bench_console"
    admin = await asyncpg.connect(url)
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    target = url.rsplit("/", 1)[0] + f"/{name}"
    await asyncio.to_thread(migrate, target)
    rng, now = random.Random(13), now_ms()
    db = await asyncpg.connect(target)
    for table, rows in _scope_rows().items():
        await db.copy_records_to_table(table, records=rows)
    for table, columns, rows in _fr_tables(list(_frs(size, rng, now))):
        if table == "fulfillment_request_accounting":  # SQLite's 0/1 as PostgreSQL's boolean
            rows = [(*r[:6], None if r[6] is None else bool(r[6]), *r[7:]) for r in rows]
        await db.copy_records_to_table(table, records=rows, columns=columns)
    await db.copy_records_to_table(
        "accounting_history", records=_history(size, rng, now),
        columns=["fulfillment_request_id", *HISTORY_COLUMNS],
    )  # fmt: skip
    for kind, token in TOKENS.items():
        await db.execute(
            "INSERT INTO api_tokens (token_hash, token_type, scope_id, label, created_at)"
            " VALUES ($1, $2, $3, $4, $5)", hash_token(token), kind, _SCOPES[kind],
            f"bench {kind}", now,
        )  # fmt: skip
    await db.execute("VACUUM ANALYZE")
    await db.close()
    return target, time.perf_counter() - started


Rows = list[tuple[str, float, float]]


def _stats(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]


async def _time(call: Callable[[], Awaitable[object]], iterations: int) -> tuple[float, float]:
    await call()  # warm the page cache and the statement cache
    samples = []
    for _ in range(iterations):
        started = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - started) * 1000)
    return _stats(samples)


async def _signed_in(app: Any, token: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app)
    client = httpx.AsyncClient(transport=transport, base_url="http://bench")
    form = await client.get("/console")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert csrf
    answer = await client.post("/console/sign-in", data={"csrf": csrf.group(1), "token": token})
    assert answer.status_code == 303, answer.text
    return client


async def _overview_rows(app: Any, client: httpx.AsyncClient, label: str, n: int) -> Rows:
    def live() -> Awaitable[object]:
        return client.get("/console/live")

    app.state.console.overviews = OverviewCache(ttl=0, past_hours_ttl=0, stale_ttl=0)
    cold = await _time(live, n)
    app.state.console.overviews = OverviewCache(ttl=0, stale_ttl=0)  # past hours kept
    computed = await _time(live, n)
    app.state.console.overviews = OverviewCache()
    warm = await _time(live, n)
    return [
        (f"Overview, nothing cached: {label}", *cold),
        (f"Overview, computed (past hours kept): {label}", *computed),
        (f"Overview, as served (cache, refreshed behind): {label}", *warm),
    ]


async def _query_rows(app: Any, client: httpx.AsyncClient, size: int, n: int) -> Rows:
    queries = app.state.console.queries
    principal = Principal(1, "account", 1)
    since = now_ms() // 3_600_000 * 3_600_000 - 23 * 3_600_000
    calls: list[tuple[str, Callable[[], Awaitable[object]]]] = [
        ("  count synced", lambda: queries.count(principal, SYNCED)),
        ("  count not synced", lambda: queries.count(principal, NOT_SYNCED)),
        ("  count with error", lambda: queries.count(principal, WITH_ERROR)),
        ("  syncs per hour (24 h)", lambda: queries.syncs_per_hour(principal, since)),
        ("  top errors", lambda: queries.top_errors(principal, 8)),
        ("Errors view, first page of 50", lambda: client.get("/console/errors")),
        ("FR page (search by number)",
         lambda: client.get(f"/console/fulfillment-request?q=FR-{size // 2}")),
    ]  # fmt: skip
    return [(name, *await _time(call, n)) for name, call in calls]


async def measure(url: str, size: int, n: int) -> Rows:
    settings = Settings(database_url=url, log_requests=False)
    app = create_app(settings)
    labels = {"account": f"account 1 ({size:,} FRs)",
              "source": f"source 10 ({size // 2:,} FRs)",
              "operator": f"operator (every account, {size + 10_000:,} FRs)"}  # fmt: skip
    rows: Rows = []
    async with app.router.lifespan_context(app):
        for who, label in labels.items():
            client = await _signed_in(app, TOKENS[who])
            rows += await _overview_rows(app, client, label, n)
            if who == "account":
                rows += await _query_rows(app, client, size, n)
            if who == "operator":
                tokens = partial(client.get, "/console/tokens")
                rows.append(("Tokens view", *await _time(tokens, n)))
            await client.aclose()
    return rows


def report(size: int, results: dict[str, tuple[float, Rows]], load: tuple[float, float]) -> str:
    stores = list(results)
    head = "| view | " + " | ".join(f"{name}: median / p95 ms" for name in stores) + " |"
    table = [head, "|---|" + "---|" * len(stores)]
    for index, (view, _, _) in enumerate(results[stores[0]][1]):
        cells = [f"{results[s][1][index][1]:.1f} / {results[s][1][index][2]:.1f}" for s in stores]
        table.append(f"| {view} | " + " | ".join(cells) + " |")
    built = "; ".join(f"{name} built in {seconds:.0f} s" for name, (seconds, _) in results.items())
    lines = [
        BEGIN,
        "## Console",
        "",
        f"- Machine: {platform.machine()}, {os.cpu_count()} cores;"
        f" Python {platform.python_version()}; SQLite {sqlite3.sqlite_version}",
        f"- Command: `python bench/console_overview.py --size {size}`"
        + (" --postgres URL" if len(stores) > 1 else ""),
        f"- Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; load average {load[0]:.1f} at the"
        f" start, {load[1]:.1f} at the end (a shared machine: 2 cores, other work running)",
        f"- Data: account 1 holds {size:,} FRs (70% synced, 25% not synced, 5% with one of"
        f" 8 errors), account 2 10,000; {HISTORY_24H:,} history entries in the last 24 h"
        f" ({built}).",
        "- Server time: through the real app in-process (httpx.ASGITransport), a signed-in"
        " session, the template rendered. Indented rows: one query of the Overview alone.",
        "",
        *table,
        "",
        "Goal: the Overview of a 1,000,000-FR account in < 500 ms of server time. Its cost is",
        "three counts, the day's syncs per hour and the top errors, read side by side (SQLite:",
        "three read connections of the console's own, in threads; PostgreSQL: the pool). The",
        'counts are the count endpoint\'s own queries: index entries only ("synced" is the',
        'scope\'s total minus the partial index of "not synced"), so they grow with the',
        "scope. Syncs per hour reads the last 24 hours of history through its `at` index and",
        "parses each entry's changes: it grows with the day's syncs, not with the FRs. Top",
        "errors reads the rows of the FRs with an error (5% here) to group their messages.",
        "",
        "What each worker keeps, so how stale a number can be (console/overview.py): the",
        "overview per scope, served as is for 2 s, and up to 30 s old while the next one is",
        'computed behind it ("as served": a page polling every 5 s shows numbers one poll old,',
        "about 5 s plus one computation; any number of browsers costs one computation per scope",
        "per worker per 2 s); and the syncs of the hours that are over, for 5 minutes",
        '("computed": only the current hour\'s history is read; a sandbox reset shows in past',
        'hours within 5 minutes). "Nothing cached" is a scope\'s first view on a worker.',
        "The Tokens view's requests, 429s and last use are at most 2 s behind: each worker",
        "counts in memory and adds its counts to the database every 2 s.",
        END,
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--reload", action="store_true")
    parser.add_argument("--postgres", help="also measure on a database made at this server")
    args = parser.parse_args()
    load_start = os.getloadavg()[0]
    path, seconds = build(args.size, args.reload)
    results = {
        "SQLite": (seconds, asyncio.run(measure(f"sqlite:///{path}", args.size, args.iterations)))
    }
    if args.postgres:
        url, seconds = asyncio.run(build_postgres(args.postgres, args.size))
        results["PostgreSQL"] = (seconds, asyncio.run(measure(url, args.size, args.iterations)))
    section = report(args.size, results, (load_start, os.getloadavg()[0]))
    print(section)
    text = REPORT.read_text()
    if BEGIN in text:
        text = text[: text.index(BEGIN)] + section + text[text.index(END) + len(END) :]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    REPORT.write_text(text)


if __name__ == "__main__":
    sys.exit(main())
