"""Read-side benchmark: the four operations of the read-side issue at 10k, 100k and 1M FRs.

    python bench/read_side.py [--sizes 10000,100000,1000000] [--iterations 400] [--reload]

For each size it generates the FRs once (`frsync demo --size N --jsonl`, 3 items per FR on
average), loads them with `frsync load` into a SQLite database (timed; both cached under
bench/.data/), then measures, through the real app in-process (httpx.ASGITransport, auth,
rate limit, JSON), on a fresh copy of that database:

- GET /fulfillment-requests/{id}           ids spread over the whole table
- PATCH …/{id}/accounting-sync             the reference success body, on unsynced FRs
- GET /fulfillment-requests?filterAccountingSynced=false&sinceId=…&filterPageSize=100
                                           sinceIds between 40% and 95% of the table
- GET /fulfillment-requests/count?filterAccountingSynced=false

and a few more for context. The token is account 1's, the largest account (34% of FRs).
Writes bench/results/read_side.md.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx

from frsync import generate
from frsync.app import create_app
from frsync.backends import open_store
from frsync.config import Settings
from frsync.store import migrate
from frsync.tokens import hash_token

HERE = Path(__file__).parent
DATA, RESULTS = HERE / ".data", HERE / "results"
TOKEN = "bench-token-account-1-" + "x" * 16
Op = Callable[[httpx.AsyncClient, int], Awaitable[httpx.Response]]


def build(size: int, reload: bool) -> tuple[Path, dict[str, float]]:
    """The loaded database for `size` FRs, and what `frsync load` took: wall seconds, peak
    memory and the database's size (MiB)."""
    lines = DATA / f"frs-{size}.jsonl"
    database, measured = DATA / f"frs-{size}.db", DATA / f"frs-{size}.load.json"
    frsync = [sys.executable, "-m", "frsync"]
    if not lines.exists():
        subprocess.run([*frsync, "demo", "--size", str(size), "--jsonl", str(lines)], check=True)
    if reload or not database.exists() or not measured.exists():
        database.unlink(missing_ok=True)
        scopes, url = generate.accounts_path(lines), f"sqlite:///{database}"
        started = time.perf_counter()
        load = subprocess.Popen([*frsync, "load", str(scopes), str(lines), "--database-url", url])
        _, status, usage = os.wait4(load.pid, 0)  # wait4: this child's own peak memory
        seconds = time.perf_counter() - started
        load.returncode = os.waitstatus_to_exitcode(status)
        if load.returncode:
            raise SystemExit(f"frsync load failed ({load.returncode})")
        figures = {"seconds": seconds, "peak_mib": usage.ru_maxrss / 1024,
                   "db_mib": database.stat().st_size / 2**20}  # fmt: skip
        measured.write_text(json.dumps(figures))
    migrate(f"sqlite:///{database}")  # a database cached by an older commit: to this schema
    return database, json.loads(measured.read_text())


def samples(database: Path, count: int) -> dict[str, list[int]]:
    """Ids to rotate through: account 1's, spread over the table, deep for sinceId."""
    db = sqlite3.connect(database)
    rng = random.Random(1)
    every = [row[0] for row in db.execute(
        "SELECT id FROM fulfillment_requests WHERE account_id = 1 ORDER BY id")]  # fmt: skip
    unsynced = [row[0] for row in db.execute(  # every generated FR has at least one item
        "SELECT id FROM fulfillment_request_accounting"
        " WHERE account_id = 1 AND accounting_synced IS NOT TRUE"
    )]  # fmt: skip
    deep = every[int(len(every) * 0.40) : int(len(every) * 0.95)]
    patched = rng.sample(unsynced, min(count, len(unsynced)))
    items = {fr: db.execute("SELECT min(id) FROM fulfillment_request_items"
                            " WHERE fulfillment_request_id = ?", (fr,)).fetchone()[0]
             for fr in patched}  # fmt: skip
    db.close()
    return {"get": rng.choices(every, k=count), "since": rng.choices(deep, k=count),
            "patch": patched, "item": [items[fr] for fr in patched], "every": every}  # fmt: skip


def operations(ids: dict[str, list[int]]) -> dict[str, Op]:
    frs = "/fulfillment-requests"
    every = ids["every"]

    def at(fraction: float, by: str) -> Op:
        """The full page of 100 that starts `fraction` of the way into account 1's FRs."""
        position = min(int(len(every) * fraction), len(every) - 100) // 100 * 100
        value = str(every[position - 1]) if by == "sinceId" else str(position // 100 + 1)
        return lambda c, i: c.get(frs, params={by: value, "filterPageSize": "100"})

    def patch(c: httpx.AsyncClient, i: int) -> Awaitable[httpx.Response]:
        fr, item = ids["patch"][i % len(ids["patch"])], ids["item"][i % len(ids["item"])]
        body = {
            "accountingSynced": True,
            "externalAccountingId": f"BENCH-{fr}",
            "accountingError": None,
            "items": [{"id": item, "externalAccountingItemId": "A"}],
        }
        return c.patch(f"{frs}/{fr}/accounting-sync", json=body)  # fmt: skip

    def page(**more: str) -> Op:
        def call(c: httpx.AsyncClient, i: int) -> Awaitable[httpx.Response]:
            since = str(ids["since"][i % len(ids["since"])])
            return c.get(frs, params={"sinceId": since, "filterPageSize": "100", **more})

        return call

    def count(**params: str) -> Op:
        return lambda c, i: c.get(f"{frs}/count", params=params)

    return {
        "GET /fulfillment-requests/{id}": lambda c, i: c.get(f"{frs}/{ids['get'][i]}"),
        "PATCH …/{id}/accounting-sync": patch,
        "page of 100, not synced, deep sinceId": page(filterAccountingSynced="false"),
        "count, not synced": count(filterAccountingSynced="false"),
        "count, has error": count(filterHasAccountingError="true"),
        "count, synced": count(filterAccountingSynced="true"),
        "count, status Processed": count(filterStatus="Processed"),
        "count, source 11": count(filterSourceId="11"),
        "count, no filter": count(),
        "count, not synced, status Processed or Acknowledged": count(
            filterAccountingSynced="false", filterStatus="Processed,Acknowledged"),
        "count, has error, source 11": count(filterHasAccountingError="true", filterSourceId="11"),
        "page of 100, deep sinceId": page(),
        "page of 100, has error, deep sinceId": page(filterHasAccountingError="true"),
        "page of 100 at the middle, sinceId": at(0.5, "sinceId"),
        "page of 100 at the middle, filterPageNumber": at(0.5, "filterPageNumber"),
        "last full page of 100, sinceId": at(1.0, "sinceId"),
        "last full page of 100, filterPageNumber": at(1.0, "filterPageNumber"),
    }  # fmt: skip


MAIN = 4  # the first four operations are the issue's; the rest run fewer times


async def measure(database: Path, iterations: int) -> dict[str, tuple[float, float]]:
    settings = Settings(database_url=f"sqlite:///{database}", rate=1e9, burst=10**9,
                        log_requests=False)  # fmt: skip
    store = await open_store(settings)
    await store.create_token(hash_token(TOKEN), "account", 1, "bench")
    await store.close()
    ids = samples(database, iterations)
    app = create_app(settings)
    results = {}
    async with app.router.lifespan_context(app), httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://bench",
        headers={"X-API-TOKEN": TOKEN},
    ) as client:  # fmt: skip
        for index, (name, op) in enumerate(operations(ids).items()):
            runs = iterations if index < MAIN else max(iterations // 4, 20)
            results[name] = await _time(client, op, runs)
    return results


async def _time(client: httpx.AsyncClient, op: Op, runs: int) -> tuple[float, float]:
    for i in range(10):  # warm the caches
        (await op(client, i)).raise_for_status()
    gc.collect()
    latencies = []
    for i in range(runs):
        started = time.perf_counter()
        answer = await op(client, i)
        latencies.append((time.perf_counter() - started) * 1000)
        answer.raise_for_status()
    return statistics.median(latencies), statistics.quantiles(latencies, n=20)[-1]


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text()
                .splitlines() if line.startswith("model name")), platform.processor())  # fmt: skip
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"{cpu}, {os.cpu_count()} cores, {memory:.0f} GiB RAM; {platform.system()}"
            f" {platform.release()}; Python {platform.python_version()};"
            f" SQLite {sqlite3.sqlite_version}")  # fmt: skip


Results = dict[int, dict[str, tuple[float, float]]]  # size -> operation -> (median, p95)
COSTS = """\
How each cost grows (the table's last column; 100 times the data). At 10k FRs every
operation is mostly the fixed cost of the HTTP stack (about 0.3 ms), so the ratios of the
counts understate their own growth, which follows the number of FRs they read:

- GET by id and PATCH are primary-key lookups, O(log n): flat. The HTTP stack, auth and
  JSON are most of the time.
- A page with `sinceId` seeks into an index and reads the page's 100 entries, their rows
  and their items, whatever the depth: O(log n + page), flat. With "not synced" or "has
  error" the index is a partial one holding only those FRs, so no other row is read.
- A count with no filter, a status or a source sums the kept counts (FRs per scope, source
  and status, which triggers keep as FRs are loaded or removed): a few rows, whatever the
  number of FRs, O(1) in it.
- A count on the accounting state reads index entries, never rows: the partial index's
  entries for "not synced" and "has error" (the FRs that match, in the scope). It grows with
  the number of matching FRs in the token's scope. "Synced" and "no error" hold for most FRs:
  they are counted as the kept count minus the entries of the partial index. The partial
  indexes also hold each FR's status and source, so adding either filter to "not synced" or
  "has error" still reads no rows, but checks each entry.
- `filterPageNumber` steps over every index entry before the page, O(offset); a page past
  the middle whose total the kept counts give is read from the end, stepping over those
  after it: the last page costs about the first's, the middle one the most.
"""


def _deep_pages(size: int, results: dict[str, tuple[float, float]]) -> str:
    def ms(where: str, by: str) -> float:
        return results[f"{where}, {by}"][0]

    middle, last = "page of 100 at the middle", "last full page of 100"
    return (
        f"Deep pages at {size:,} FRs (account 1): the middle page costs"
        f" {ms(middle, 'filterPageNumber'):.1f} ms by `filterPageNumber` and"
        f" {ms(middle, 'sinceId'):.1f} ms by `sinceId`; the last page"
        f" {ms(last, 'filterPageNumber'):.1f} ms and {ms(last, 'sinceId'):.1f} ms."
        " Page through large results with `sinceId`."
    )


def report(sizes: list[int], loads: dict[int, dict[str, float]], results: Results,
           command: str, load_average: tuple[float, float]) -> str:  # fmt: skip
    names = list(results[sizes[0]])
    head = "| operation | " + " | ".join(f"{s:,} FRs: median / p95" for s in sizes)
    lines = [
        "## Read side (SQLite)", "",
        f"- Machine: {machine()}",
        f"- Command: `{command}`",
        f"- Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; load average {load_average[0]:.1f}"
        f" at the start, {load_average[1]:.1f} at the end (a shared machine)",
        "- Through the real app in-process (httpx.ASGITransport): auth, rate limit, JSON.",
        "  Token: account 1, the largest account (34% of the FRs). Times in milliseconds.", "",
        head + (f" | growth {sizes[0]:,} → {sizes[-1]:,} |" if len(sizes) > 1 else " |"),
        "|---" * (len(sizes) + 1 + (len(sizes) > 1)) + "|",
    ]  # fmt: skip
    for name in names:
        cells = [f"{results[s][name][0]:.2f} / {results[s][name][1]:.2f}" for s in sizes]
        growth = results[sizes[-1]][name][0] / results[sizes[0]][name][0]
        tail = f" | ×{growth:.1f} |" if len(sizes) > 1 else " |"
        lines.append(f"| {name} | " + " | ".join(cells) + tail)
    load_title = "`frsync load SCOPES.json FRS.jsonl` (3 items per FR on average), wall clock:"
    lines += ["", COSTS, _deep_pages(sizes[-1], results[sizes[-1]]), "", load_title, ""]
    lines += [f"- {s:,} FRs: {loads[s]['seconds']:.1f} s ({s / loads[s]['seconds']:,.0f} FRs/s),"
              f" peak memory {loads[s]['peak_mib']:.0f} MiB, database {loads[s]['db_mib']:.0f} MiB"
              for s in sizes]  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--iterations", type=int, default=400)
    parser.add_argument("--reload", action="store_true", help="load the databases again")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    DATA.mkdir(exist_ok=True)
    RESULTS.mkdir(exist_ok=True)
    start_load = os.getloadavg()[0]
    loads: dict[int, dict[str, float]] = {}
    results: Results = {}
    for size in sizes:
        database, loads[size] = build(size, args.reload)
        run = DATA / f"run-{size}.db"
        shutil.copyfile(database, run)  # every run starts from the same data
        results[size] = asyncio.run(measure(run, args.iterations))
        for leftover in DATA.glob(f"run-{size}.db*"):
            leftover.unlink()
        print(f"{size:,} FRs measured", file=sys.stderr)
    command = "python bench/read_side.py " + " ".join(sys.argv[1:])
    text = report(sizes, loads, results, command.strip(), (start_load, os.getloadavg()[0]))
    (RESULTS / "read_side.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
