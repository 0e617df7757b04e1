"""Sandbox mode: how long `POST /__admin/reset` takes, and what sandbox mode costs a PATCH.

    python bench/sandbox_reset.py [--sizes 10000,100000] [--rounds 7] [--patches 2000]
    python bench/sandbox_reset.py --tenants 10000 --sizes 10000   # reset after 10k tenants
    python bench/sandbox_reset.py --rules --sizes 10000 --patches 500  # 1 vs 10,000 rules

Through the real app in-process (httpx.ASGITransport: auth, rules, journal, JSON), on each
store that is reachable (SQLite always; PostgreSQL at FRSYNC_TEST_POSTGRES_URL):

- reset after a typical test: 20 PATCHes of random FRs, one tenant of 10 FRs and a fault
  rule since the last reset (median and worst of `--rounds`);
- reset after every FR changed: each FR's accounting fields rewritten and a history entry
  per FR (written in SQL: 100,000 PATCHes through the app would take minutes);
- the PATCH path in the same run, on two copies of the same 10,000-FR database: sandbox
  off, sandbox on (no rules), sandbox on with 5 rules that do not match; rounds of
  `--patches` requests alternate between them, so noise hits all three alike.

Writes bench/results/sandbox.md and the "Sandbox mode" section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import re
import shutil
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from frsync import generate
from frsync.app import create_app
from frsync.backends import open_store
from frsync.config import Settings
from frsync.store import migrate
from frsync.tokens import hash_token

HERE = Path(__file__).parent
RESULTS = HERE / "results" / "sandbox.md"
BENCHMARKS = HERE.parent / "BENCHMARKS.md"
TOKEN = "bench-sandbox-account-1-" + "x" * 16
OPERATOR = "bench-sandbox-operator-" + "y" * 16
POSTGRES = os.environ.get("FRSYNC_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
SECTION = "## Sandbox mode"
TABLES = ("accounting_history, fulfillment_request_items, fulfillment_request_accounting,"
          " fulfillment_requests, api_tokens,"
          " sources, channels, accounts, sandbox_baseline_frs, sandbox_baseline_items,"
          " sandbox_state, sandbox_tenants, sandbox_faults, sandbox_journal")  # fmt: skip


async def seed(url: str, size: int) -> None:
    store = await open_store(Settings(database_url=url))
    try:
        await store.load(generate.load_batches(size))
        await store.create_token(hash_token(TOKEN), "account", 1, "bench")
        await store.create_token(hash_token(OPERATOR), "operator", 0, "bench")
    finally:
        await store.close()


@asynccontextmanager
async def app_clients(url: str, sandbox: bool) -> AsyncIterator[tuple[httpx.AsyncClient, ...]]:
    settings = Settings(database_url=url, sandbox=sandbox, log_requests=False,
                        burst=10**9, rate=10**6)  # fmt: skip
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with (
            httpx.AsyncClient(transport=transport, base_url="http://b",
                              headers={"X-API-TOKEN": TOKEN}) as api,
            httpx.AsyncClient(transport=transport, base_url="http://b",
                              headers={"X-API-TOKEN": OPERATOR}) as admin,
        ):  # fmt: skip
            yield api, admin


async def account_frs(api: httpx.AsyncClient) -> list[tuple[int, int]]:
    """(FR id, first item id) of account 1's first 500 FRs with items."""
    frs = (await api.get("/fulfillment-requests", params={"filterPageSize": "500"})).json()
    return [(fr["id"], fr["fulfillmentRequestItems"][0]["id"])
            for fr in frs if fr["fulfillmentRequestItems"]]  # fmt: skip


def patch_body(n: int, item: int) -> dict[str, Any]:
    return {"accountingSynced": n % 2 == 0, "externalAccountingId": f"B-{n}",
            "accountingError": None if n % 2 == 0 else "Vendor not mapped",
            "items": [{"id": item, "externalAccountingItemId": f"B-{n}-1"}]}  # fmt: skip


async def timed_reset(admin: httpx.AsyncClient) -> float:
    started = time.perf_counter()
    response = await admin.post("/__admin/reset")
    took = (time.perf_counter() - started) * 1000
    assert response.status_code == 204, response.text
    return took


async def typical_resets(url: str, rounds: int) -> list[float]:
    rng = random.Random(7)
    times = []
    async with app_clients(url, sandbox=True) as (api, admin):
        frs = await account_frs(api)
        for _ in range(rounds):
            for n, (fr, item) in enumerate(rng.sample(frs, 20)):
                body = patch_body(n, item)
                assert (await api.patch(f"/fulfillment-requests/{fr}/accounting-sync",
                                        json=body)).status_code == 204  # fmt: skip
            assert (await admin.post("/__admin/tenants", json={})).status_code == 201
            rule = {"match": {"method": "DELETE"}, "action": {"status": 500}}
            assert (await admin.post("/__admin/faults", json=rule)).status_code == 201
            times.append(await timed_reset(admin))
    return times


CHANGE_ALL = (
    "UPDATE fulfillment_request_accounting SET accounting_synced = false, accounting_error = 'x',"
    " external_accounting_id = 'y', updated_at = updated_at + 1",
    "UPDATE fulfillment_request_items SET external_accounting_item_id = 'z'",
    "INSERT INTO accounting_history (fulfillment_request_id, at, token_id, token_type,"
    " request_id, changes) SELECT id, 0, 1, 'account', 'bench', '{}' FROM fulfillment_requests",
)


async def change_everything(url: str) -> None:
    if url.startswith("sqlite"):
        import sqlite3

        db = sqlite3.connect(url.removeprefix("sqlite:///"))
        with db:
            for statement in CHANGE_ALL:
                db.execute(statement)
        db.close()
        return
    import asyncpg

    connection = await asyncpg.connect(url)
    try:
        for statement in CHANGE_ALL:
            await connection.execute(statement)
    finally:
        await connection.close()


async def worst_resets(url: str, rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        await change_everything(url)
        async with app_clients(url, sandbox=True) as (_, admin):
            times.append(await timed_reset(admin))
    return times


async def patch_costs(urls: dict[str, str], patches: int, rounds: int) -> dict[str, list[float]]:
    """Per-PATCH latency (ms) for each mode, rounds interleaved."""
    latencies: dict[str, list[float]] = {mode: [] for mode in urls}
    async with (
        app_clients(urls["off"], sandbox=False) as (off_api, _),
        app_clients(urls["on"], sandbox=True) as (on_api, _),
        app_clients(urls["on, 5 rules"], sandbox=True) as (rules_api, rules_admin),
    ):
        for _ in range(5):
            rule = {"match": {"method": "DELETE", "tokenType": "channel"},
                    "action": {"status": 500}}  # fmt: skip
            assert (await rules_admin.post("/__admin/faults", json=rule)).status_code == 201
        clients = {"off": off_api, "on": on_api, "on, 5 rules": rules_api}
        frs = await account_frs(off_api)
        for round_number in range(rounds):
            for mode, api in clients.items():
                for n in range(patches):
                    fr, item = frs[n % len(frs)]
                    body = patch_body(n + round_number, item)
                    started = time.perf_counter()
                    response = await api.patch(f"/fulfillment-requests/{fr}/accounting-sync",
                                               json=body)  # fmt: skip
                    latencies[mode].append((time.perf_counter() - started) * 1000)
                    assert response.status_code == 204, response.text
    return latencies


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Database:
    """A fresh database per measurement: a SQLite file, or a PostgreSQL database."""

    def __init__(self, kind: str, workdir: Path) -> None:
        self.kind, self.workdir = kind, workdir

    async def fresh(self, name: str) -> str:
        if self.kind == "sqlite":
            url = f"sqlite:///{self.workdir / name}.db"
        else:
            import asyncpg

            database = f"frsync_bench_sandbox_{name}"
            connection = await asyncpg.connect(POSTGRES)
            try:
                await connection.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
                await connection.execute(f'CREATE DATABASE "{database}"')
            finally:
                await connection.close()
            url = POSTGRES.rsplit("/", 1)[0] + f"/{database}"
        await asyncio.to_thread(migrate, url)
        return url

    async def seeded(self, name: str, size: int) -> str:
        """A fresh database holding `size` generated FRs; its URL."""
        url = await self.fresh(name)
        await seed(url, size)
        return url

    async def drop_all(self) -> None:
        if self.kind != "postgresql":
            return
        import asyncpg

        connection = await asyncpg.connect(POSTGRES)
        try:
            names = await connection.fetch(
                "SELECT datname FROM pg_database WHERE datname LIKE 'frsync_bench_sandbox_%'"
            )
            for (name,) in names:
                await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await connection.close()


async def postgres_reachable() -> bool:
    try:
        import asyncpg

        connection = await asyncpg.connect(POSTGRES, timeout=3)
        await connection.close()
        return True
    except Exception:
        return False


@asynccontextmanager
async def each_store() -> AsyncIterator[list[Database]]:
    """A `Database` on each reachable store (SQLite, and PostgreSQL when it answers), in a
    scratch folder removed at the end."""
    kinds = ["sqlite"] + (["postgresql"] if await postgres_reachable() else [])
    workdir = Path(tempfile.mkdtemp(prefix="frsync-bench-sandbox-"))
    try:
        yield [Database(kind, workdir) for kind in kinds]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


async def measure(args: argparse.Namespace) -> list[str]:
    reset_rows, cost_rows = [], []
    async with each_store() as databases:
        for database in databases:
            kind = database.kind
            for size in args.sizes:
                url = await database.fresh(f"reset_{size}")
                started = time.perf_counter()
                await seed(url, size)
                print(f"{kind} {size:,} FRs loaded in {time.perf_counter() - started:.1f} s")
                typical = await typical_resets(url, args.rounds)
                worst = await worst_resets(url, max(3, args.rounds // 2))
                reset_rows.append((kind, size, typical, worst))
                print(f"  reset typical {statistics.median(typical):.1f} ms,"
                      f" all changed {statistics.median(worst):.1f} ms")  # fmt: skip
            urls = {}
            for mode in ("off", "on", "on, 5 rules"):
                name = "patch_" + mode.replace(", ", "_").replace(" ", "_")
                urls[mode] = await database.seeded(name, 10_000)
            latencies = await patch_costs(urls, args.patches, 3)
            cost_rows.append((kind, latencies))
            await database.drop_all()
    return report(reset_rows, cost_rows, args)


def report(reset_rows: list[Any], cost_rows: list[Any], args: argparse.Namespace) -> list[str]:
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        SECTION, "",
        f"Generated by `python bench/sandbox_reset.py` on {now} ({platform.machine()},"
        f" {os.cpu_count()} cores, shared and noisy: compare figures of the same run). In-process"
        " through the whole app (httpx.ASGITransport): auth, fault rules, journal, JSON.", "",
        "**`POST /__admin/reset`** (goal: < 250 ms at 10,000 FRs). *Typical*: after a test's"
        " worth of changes (20 PATCHes, a tenant of 10 FRs, a fault rule), median and worst of"
        f" {args.rounds}. *All changed*: after every FR's accounting fields, items and history"
        " were changed. Reset restores only FRs with history since the baseline, so its cost"
        " follows the changes, not the table.", "",
        "| store | FRs | typical p50 ms | typical max ms | all changed p50 ms | goal |",
        "|---|---:|---:|---:|---:|---|",
    ]  # fmt: skip
    for kind, size, typical, worst in reset_rows:
        goal = "" if size != 10_000 else ("met" if max(typical) < 250 else "MISSED")
        lines.append(f"| {kind} | {size:,} | {statistics.median(typical):.1f} | {max(typical):.1f}"
                     f" | {statistics.median(worst):.1f} | {goal} |")  # fmt: skip
    lines += [
        "", "**Cost of sandbox mode on the PATCH path** (same run, same 10,000-FR data, rounds"
        f" of {args.patches} sequential PATCHes interleaved between the modes): sandbox mode"
        " adds one read of the fault rules and one journal write before the answer.", "",
        "| store | mode | mean ms | p50 ms | p99 ms | vs off (mean) |",
        "|---|---|---:|---:|---:|---:|",
    ]  # fmt: skip
    for kind, latencies in cost_rows:
        base = statistics.mean(latencies["off"])
        for mode, values in latencies.items():
            mean = statistics.mean(values)
            lines.append(f"| {kind} | {mode} | {mean:.3f} | {pct(values, 0.5):.3f} |"
                         f" {pct(values, 0.99):.3f} | {mean / base:.2f}× |")  # fmt: skip
    return [*lines, ""]


def write(lines: list[str]) -> None:
    text = "\n".join(lines)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(text)
    current = BENCHMARKS.read_text() if BENCHMARKS.exists() else "# Benchmarks\n"
    # Up to the next heading or marker: the console's section begins with a marker line.
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |^<!-- |\Z)", re.DOTALL | re.MULTILINE)
    if pattern.search(current):
        updated = pattern.sub(lambda _: text + "\n", current)
    else:
        updated = current.rstrip() + "\n\n" + text + "\n"
    BENCHMARKS.write_text(updated)


async def make_tenants(url: str, count: int) -> None:
    """`count` tenants of one FR with one item, written in bulk from the API's own rows and
    id counter (10,000 POSTs would take minutes)."""
    from frsync.sandbox import sql as sandbox_sql
    from frsync.sandbox.store import NEXT_ID, TENANT_ID_BASE, TenantPlan
    from frsync.sandbox.store_postgres import pg
    from frsync.store.postgres_sql import arrays
    from frsync.store.sqlite import json_rows

    size = TenantPlan(1, 1, {}, 0).id_count
    store = await open_store(Settings(database_url=url))
    try:
        first = TENANT_ID_BASE
        if store.kind == "sqlite":
            row = await store.read(lambda db: db.execute(sandbox_sql.NEXT_TENANT_ID,
                                                         (NEXT_ID,)).fetchone())  # fmt: skip
        else:
            async with store.acquire() as connection:
                row = await connection.fetchrow(pg(sandbox_sql.NEXT_TENANT_ID), NEXT_ID)
        first = int(row[0]) if row else TENANT_ID_BASE
        rows: dict[str, list[tuple[Any, ...]]] = {kind: [] for kind in sandbox_sql.TENANT_SQL}
        for n in range(count):
            hashes = {kind: os.urandom(32) for kind in ("account", "source", "channel")}
            plan = TenantPlan(1, 1, hashes, 0)  # type: ignore[arg-type]
            for kind, more in sandbox_sql.tenant_rows(plan, first + n * size)[1].items():
                rows[kind] += more
        counter = (NEXT_ID, first + count * size, count * size)
        if store.kind == "sqlite":

            def write(db: Any) -> None:
                db.execute(sandbox_sql.RESERVE_IDS, counter)
                for _, statement, params in sandbox_sql.tenant_statements(rows, json_rows):
                    db.executemany(statement, params)

            await store.transaction(write)
        else:
            async with store.transaction(bounded=False) as connection:
                await connection.execute(pg(sandbox_sql.RESERVE_IDS), *counter)
                for _, statement, params in sandbox_sql.tenant_statements(rows, arrays):
                    await connection.executemany(pg(statement), params)
    finally:
        await store.close()


async def tenant_resets(size: int, tenants: int, rounds: int) -> list[str]:
    """Reset time at `size` FRs with `tenants` tenants made since each reset (and 20 PATCHes
    of loaded FRs), median and worst of `rounds`, on each reachable store."""
    lines = [f"Reset at {size:,} FRs after {tenants:,} tenants made since (rounds: {rounds}):"]
    async with each_store() as databases:
        for database in databases:
            url = await database.seeded(f"tenants_{size}", size)
            times = []
            async with app_clients(url, sandbox=True) as (api, admin):
                frs = await account_frs(api)
                for _ in range(rounds):
                    await make_tenants(url, tenants)
                    for n, (fr, item) in enumerate(random.Random(3).sample(frs, 20)):
                        await api.patch(f"/fulfillment-requests/{fr}/accounting-sync",
                                        json=patch_body(n, item))  # fmt: skip
                    times.append(await timed_reset(admin))
                    await asyncio.sleep(0.5)  # the background purge, outside the figure
            await database.drop_all()
            lines.append(f"- {database.kind}: median {statistics.median(times):.1f} ms,"
                         f" worst {max(times):.1f} ms")  # fmt: skip
    return lines


async def add_rules(url: str, accounts: list[int], per_account: int) -> None:
    """Tenant rules that never match account 1's requests, written in bulk, and the rules'
    version stamp bumped as the API does."""
    from frsync.sandbox import sql as sandbox_sql
    from frsync.sandbox.store_postgres import pg

    rule = '{"match":{},"action":{"status":500},"times":null,"skip":null,"probability":null}'
    rows = [(rule, None, 0, account, None) for account in accounts for _ in range(per_account)]
    insert = sandbox_sql.ADD_RULE.replace(" RETURNING id", "")
    store = await open_store(Settings(database_url=url))
    try:
        if store.kind == "sqlite":

            def write(db: Any) -> None:
                db.executemany(insert, rows)
                db.execute(sandbox_sql.BUMP_RULES_VERSION)

            await store.transaction(write)
        else:
            async with store.transaction() as connection:
                await connection.executemany(pg(insert), rows)
                await connection.execute(sandbox_sql.BUMP_RULES_VERSION)
    finally:
        await store.close()


async def rule_costs(size: int, requests: int) -> list[str]:
    """Median time of a GET of one FR with 1 rule and with 10,000 rules (1,000 for each of
    10 tenants, none matching), on each reachable store."""
    lines = [f"GET /fulfillment-requests/{{id}} in sandbox mode, {requests} requests each:"]
    async with each_store() as databases:
        for database in databases:
            url = await database.seeded(f"rules_{size}", size)
            figures = []
            for accounts, per in (([10**12], 1), ([10**12 + k for k in range(1, 11)], 1_000)):
                await add_rules(url, accounts, per)
                async with app_clients(url, sandbox=True) as (api, _):
                    fr = (await account_frs(api))[0][0]
                    await api.get(f"/fulfillment-requests/{fr}")  # loads the rules
                    times = []
                    for _ in range(requests):
                        started = time.perf_counter()
                        assert (await api.get(f"/fulfillment-requests/{fr}")).status_code == 200
                        times.append((time.perf_counter() - started) * 1000)
                figures.append(statistics.median(times))
            await database.drop_all()
            lines.append(
                f"- {database.kind}: 1 rule {figures[0]:.2f} ms, 10,001 rules {figures[1]:.2f} ms"
            )
    return lines


def main(argv: list[str] | None = None, *, out: Callable[[list[str]], None] = write) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000",
                        type=lambda s: [int(x) for x in s.split(",")])  # fmt: skip
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--patches", type=int, default=2000)
    parser.add_argument(
        "--tenants",
        type=int,
        default=0,
        help="only measure reset after this many tenants (prints, writes nothing)",
    )
    parser.add_argument(
        "--rules",
        action="store_true",
        help="only measure a GET with 1 vs 10,000 rules (prints only)",
    )
    args = parser.parse_args(argv)
    if args.rules:
        print("\n".join(asyncio.run(rule_costs(args.sizes[0], args.patches))))
        return
    if args.tenants:
        size = args.sizes[0]
        print("\n".join(asyncio.run(tenant_resets(size, args.tenants, min(args.rounds, 5)))))
        return
    out(asyncio.run(measure(args)))


if __name__ == "__main__":
    main()
