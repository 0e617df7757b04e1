"""Figures for the hardening of issue 14, rewritten into RELIABILITY.md's "Hardening" section.

    python -m bench.hardening_report              # every figure (~3 minutes)
    python -m bench.hardening_report history      # or some of: history headers limit shutdown

- history: one FR with 1,000 items and 10,000 history entries of 1,000 item changes each
  (one real PATCH through the API, its entry copied in SQL), on SQLite and PostgreSQL;
  time and size of the first page (default 20), of a page of 100, and of the oldest page.
- headers: RSS of a 1-worker `frsync serve` while 100 connections each hold a 64 KiB request
  head (just under the bound, never ended), then while 100 more each try to send 1 MiB.
- limit: `frsync serve --workers 2` without Redis, one token at 20 req/s for 30 s, each
  request on a new connection; and the cost of a hit on the shared table vs in-process.
- shutdown: `frsync serve --workers 2`, SIGTERM with a request in flight, a new connection
  tried every 50 ms: time to the first refusal (5 runs).

Only the text between `<!-- hardening:start -->` and `<!-- hardening:end -->` is replaced.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import platform
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from tests.faults.harness import ServerProcess, postgres_database
from tests.ops.conftest import ServeProcess, env_for, load_with_cli, wait_ready
from tests.ops.test_shutdown_refusal import GRACE, refusal_after_sigterm
from tests.ops.test_workers import _hammer
from tests.support import BASIC_FIXTURE, TOKENS, run_sql

from frsync.ratelimit import MemoryStore, SharedMemoryStore
from frsync.server_protocol import MAX_HEAD_BYTES

RELIABILITY = Path(__file__).resolve().parent.parent / "RELIABILITY.md"
START, END = "<!-- hardening:start -->", "<!-- hardening:end -->"
HUGE = "1000000"
ENTRIES, ITEMS = 10_000, 1_000
FR_ID = 1
TOKEN = "tok-bench-history-0000000000"


def _verdict(ok: bool) -> str:
    return "pass" if ok else "**FAIL**"


# history ----------------------------------------------------------------------------------


def _history_fixture() -> dict[str, Any]:
    items = [
        {
            "id": 100_000 + i,
            "sku": f"S{i}",
            "title": f"Item {i}",
            "quantity": 1,
            "cost": 1.5,
            "orderItemId": i + 1,
        }
        for i in range(ITEMS)
    ]
    return {
        "accounts": [{"id": 1, "name": "Bench"}],
        "sources": [{"id": 10, "accountId": 1, "name": "Source"}],
        "channels": [],
        "fulfillmentRequests": [
            {
                "id": FR_ID,
                "accountId": 1,
                "sourceId": 10,
                "channelId": None,
                "orderId": 1,
                "fulfillmentRequestNumber": "FR-1",
                "status": "Processed",
                "generatedAt": "2026-11-20T10:00:00.000Z",
                "items": items,
            }
        ],
        "tokens": [{"token": TOKEN, "type": "account", "id": 1}],
    }


_COPY_SQLITE = f"""
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {ENTRIES - 1})
INSERT INTO accounting_history
  (fulfillment_request_id, at, token_id, token_type, request_id, changes)
SELECT h.fulfillment_request_id, h.at + n.i, h.token_id, h.token_type,
       h.request_id || '-' || n.i, h.changes
FROM accounting_history AS h, n
"""
_COPY_PG = f"""
INSERT INTO accounting_history
  (fulfillment_request_id, at, token_id, token_type, request_id, changes)
SELECT h.fulfillment_request_id, h.at + n, h.token_id, h.token_type,
       h.request_id || '-' || n, h.changes
FROM accounting_history AS h, generate_series(1, {ENTRIES - 1}) AS n
"""


@contextmanager
def _database(store: str, workdir: Path) -> Iterator[str]:
    if store == "sqlite":
        yield f"sqlite:///{workdir / 'history.db'}"
    else:
        with postgres_database("frsync_bench_history") as url:
            yield url


def _timed_get(client: httpx.Client, params: dict[str, Any], runs: int = 5) -> tuple[float, int]:
    """Median seconds and the size in bytes of GET history with `params`."""
    times, size = [], 0
    for _ in range(runs):
        started = time.perf_counter()
        answer = client.get(f"/fulfillment-requests/{FR_ID}/accounting-sync/history", params=params)
        times.append(time.perf_counter() - started)
        answer.raise_for_status()
        size = len(answer.content)
    return statistics.median(times), size


def history_figures(store: str, workdir: Path) -> str:
    import msgspec

    with _database(store, workdir) as url:
        env = {"FRSYNC_DATABASE_URL": url}
        load_with_cli({**os.environ, **env}, workdir, _history_fixture())
        server = ServerProcess(workdir, env, "--burst", HUGE, "--rate", HUGE, workers=1)
        server.start()
        try:
            headers = {"X-API-TOKEN": TOKEN}
            with httpx.Client(base_url=server.base, headers=headers, timeout=120) as client:
                body = {
                    "externalAccountingId": "INV-1",
                    "items": [
                        {"id": 100_000 + i, "externalAccountingItemId": f"QB-{i:06d}"}
                        for i in range(ITEMS)
                    ],
                }
                client.patch(
                    f"/fulfillment-requests/{FR_ID}/accounting-sync",
                    content=msgspec.json.encode(body),
                    headers={"Content-Type": "application/json"},
                ).raise_for_status()
                copied = time.monotonic()
                if store == "sqlite":
                    with contextlib.closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as db:
                        db.execute(_COPY_SQLITE)
                        db.commit()
                else:
                    asyncio.run(run_sql(url, _COPY_PG))
                copied = time.monotonic() - copied
                first_t, first_b = _timed_get(client, {})
                hundred_t, hundred_b = _timed_get(client, {"limit": 100})
                ids = [
                    e["id"]
                    for e in client.get(
                        f"/fulfillment-requests/{FR_ID}/accounting-sync/history",
                        params={"limit": 1},
                    ).json()
                ]
                oldest_t, oldest_b = _timed_get(client, {"limit": 100, "beforeId": ids[0] - 9_900})
                entry_b = first_b / 20
        finally:
            server.stop()
    return (
        f"| history, {store} | {ENTRIES:,} entries of {ITEMS:,} item changes on one FR "
        f"(~{entry_b / 1024:.0f} KiB of JSON each; copied in {copied:.1f} s): first page "
        f"(default 20) {first_t * 1000:.0f} ms, {first_b / 1024:.0f} KiB; `limit=100` "
        f"{hundred_t * 1000:.0f} ms, {hundred_b / 1024 / 1024:.1f} MiB; the oldest 100 "
        f"(`beforeId`) {oldest_t * 1000:.0f} ms, {oldest_b / 1024 / 1024:.1f} MiB (median of 5). "
        f"Before paging one answer held all {ENTRIES:,}: ~{entry_b * ENTRIES / 2**20:,.0f} MiB "
        f"| {_verdict(hundred_b <= 100 * entry_b * 1.01 and oldest_t < 5)} |"
    )


# headers ----------------------------------------------------------------------------------


def _rss(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) in MiB."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            found[line.split(":")[0]] = int(line.split()[1]) / 1024
    return found["VmRSS"], found["VmHWM"]


async def _hold_heads(port: int, count: int) -> list[asyncio.StreamWriter]:
    """`count` connections, each having sent a request head of MAX_HEAD_BYTES - 4 bytes
    without the blank line that would end it."""
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Padding: "
    head += b"a" * (MAX_HEAD_BYTES - 4 - len(head))
    writers = []
    for _ in range(count):
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(head)
        await writer.drain()
        writers.append(writer)
    return writers


async def _send_big(port: int) -> str:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ")
        for _ in range(16):
            writer.write(b"a" * 65536)
            await writer.drain()
        answer = await asyncio.wait_for(reader.read(100), 5)
        return answer[9:12].decode() or "closed"
    except ConnectionError:
        return "reset"
    finally:
        writer.close()


async def _header_run(server: ServeProcess) -> tuple[list[float], dict[str, int]]:
    pid = server.process.pid
    before = _rss(pid)[0]
    writers = await _hold_heads(server.port, 100)
    await asyncio.sleep(1)
    held = _rss(pid)[0]
    outcomes: dict[str, int] = {}
    for result in await asyncio.gather(*(_send_big(server.port) for _ in range(100))):
        outcomes[result] = outcomes.get(result, 0) + 1
    await asyncio.sleep(1)
    after, peak = _rss(pid)
    for writer in writers:
        writer.close()
    return [before, held, after, peak], outcomes


def header_figures(workdir: Path) -> str:
    env = env_for(workdir, header_timeout="60", max_connections="1000")
    load_with_cli(env, workdir, BASIC_FIXTURE)
    server = ServeProcess(env, workdir / "headers.log")
    try:
        wait_ready(server.base)
        (before, held, after, peak), outcomes = asyncio.run(_header_run(server))
    finally:
        server.stop()
    answers = ", ".join(f"{k}: {v}" for k, v in sorted(outcomes.items()))
    return (
        f"| request heads, 1 worker | RSS {before:.0f} MiB idle; {held:.0f} MiB with 100 "
        f"connections each holding a 64 KiB head (+{(held - before) * 1024 / 100:.0f} KiB per "
        f"connection); then 100 connections each sending a 1 MiB header line: answers "
        f"{{{answers}}}, RSS {after:.0f} MiB, peak {peak:.0f} MiB (the probe's 200 MB header "
        f"x 5 took it from 223 MB to 1.24 GB before the bound) "
        f"| {_verdict(peak - before < 64 and set(outcomes) <= {'431', 'reset', 'closed'})} |"
    )


# limit ------------------------------------------------------------------------------------


def _per_hit_us(store: Any, keys: list[str], rounds: int) -> float:
    async def run() -> float:
        started = time.perf_counter()
        for _ in range(rounds):
            for key in keys:
                await store.hit(key, 40, 2.0)
        return (time.perf_counter() - started) / (rounds * len(keys)) * 1e6

    return asyncio.run(run())


def _contended(path: str, keys: list[str], rounds: int, queue: Any) -> None:
    queue.put(_per_hit_us(SharedMemoryStore(path), keys, rounds))


def limit_figures(workdir: Path) -> str:
    keys = [f"t:{n:032x}" for n in range(1000)]
    memory_us = _per_hit_us(MemoryStore(), keys, 50)
    path = str(workdir / "buckets")
    shared_us = _per_hit_us(SharedMemoryStore(path), keys, 50)
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    workers = [context.Process(target=_contended, args=(path, keys, 50, queue)) for _ in range(2)]
    for process in workers:
        process.start()
    contended_us = max(queue.get(timeout=120) for _ in workers)
    for process in workers:
        process.join(30)

    load_with_cli(env_for(workdir), workdir, BASIC_FIXTURE)
    server = ServeProcess(env_for(workdir), workdir / "limit.log", "--workers", "2")
    try:
        wait_ready(server.base)
        ready = httpx.get(f"{server.base}/readyz", timeout=5).json()
        admitted, elapsed = _hammer([server.base], TOKENS["account1"], 20, 30)
    finally:
        server.stop()
    bound = 40 + 2 * elapsed
    verdict = _verdict(admitted <= bound + 1 and ready["rateLimit"] == "ok")
    size = Path(path).stat().st_size / 2**20
    return (
        f"| one limit, 2 workers, no Redis | 600 requests at 20/s for {elapsed:.1f} s, new "
        f"connection each: {admitted} admitted (contract: ≤ 40 + 2 × {elapsed:.0f} s = "
        f"{bound:.0f}; the probe saw 198–200 before); `/readyz` rateLimit {ready['rateLimit']!r}. "
        f"Cost of a hit: in-process {memory_us:.1f} µs, shared table {shared_us:.1f} µs, "
        f"shared table with 2 processes hitting it flat out {contended_us:.1f} µs; table "
        f"{size:.1f} MiB whatever the number of tokens | {verdict} |"
    )


# shutdown ---------------------------------------------------------------------------------


def shutdown_figures(workdir: Path, runs: int = 5) -> str:
    load_with_cli(env_for(workdir), workdir, BASIC_FIXTURE)
    firsts: list[float] = []
    hung = answered = reset = 0
    for n in range(runs):
        env = env_for(workdir, shutdown_grace_seconds=str(GRACE), request_read_timeout="60")
        server = ServeProcess(env, workdir / f"shutdown-{n}.log", "--workers", "2")
        wait_ready(server.base)
        refused_at, outcomes, answer = asyncio.run(refusal_after_sigterm(server))
        firsts.append(refused_at)
        hung += outcomes.count("hung")
        answered += outcomes.count("answered")
        reset += outcomes.count("reset")
        assert answer == b"204", answer
    ok = hung == 0 and max(firsts) < 0.5
    return (
        f"| SIGTERM, 2 workers | {runs} runs, a PATCH in flight, a new connection tried every "
        f"50 ms: first refusal {min(firsts):.2f}/{statistics.median(firsts):.2f}/"
        f"{max(firsts):.2f} s after SIGTERM (min/median/max; the probe saw connections hang "
        f"up to 3.5 s, then reset); before it, connections answered {answered}, reset "
        f"at once {reset}, hung {hung}; every in-flight PATCH 204 | {_verdict(ok)} |"
    )


# report -----------------------------------------------------------------------------------


FIGURES: dict[str, Callable[[Path], list[str]]] = {
    "history": lambda d: [
        history_figures("sqlite", d / "h-sqlite"),
        history_figures("postgres", d / "h-pg"),
    ],
    "headers": lambda d: [header_figures(d / "headers")],
    "limit": lambda d: [limit_figures(d / "limit")],
    "shutdown": lambda d: [shutdown_figures(d / "shutdown")],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("which", nargs="*", help=f"some of: {' '.join(FIGURES)} (default all)")
    args = parser.parse_args()
    unknown = set(args.which) - set(FIGURES)
    if unknown:
        parser.error(f"unknown figure(s) {sorted(unknown)}; choose from {list(FIGURES)}")
    started = time.monotonic()
    rows = []
    with tempfile.TemporaryDirectory(prefix="frsync-hardening-") as tmp:
        for name in args.which or FIGURES:
            for sub in ("h-sqlite", "h-pg", "headers", "limit", "shutdown"):
                (Path(tmp) / sub).mkdir(exist_ok=True)
            print(f"hardening: {name} …", flush=True)
            rows += FIGURES[name](Path(tmp))
    text = RELIABILITY.read_text()
    # Rows of figures not run this time stay as they were (keyed by their first cell).
    kept = {}
    if START in text:
        for line in text[text.index(START) : text.index(END)].splitlines():
            if line.startswith("| ") and not line.startswith(("| case", "|---")):
                kept[line.split("|")[1].strip()] = line
    kept.update({row.split("|")[1].strip(): row for row in rows})
    order = [
        "history, sqlite",
        "history, postgres",
        "request heads, 1 worker",
        "one limit, 2 workers, no Redis",
        "SIGTERM, 2 workers",
    ]
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    section = "\n".join(
        [
            START,
            f"Generated by `python -m bench.hardening_report` (last run {when}: "
            f"{', '.join(args.which or FIGURES)}, {(time.monotonic() - started) / 60:.1f} min), "
            f"{os.cpu_count()} CPUs (CPython {platform.python_version()}), on a machine shared "
            "with other test runs (times are upper bounds).",
            "",
            "| case | figures | verdict |",
            "|---|---|---|",
            *sorted(
                kept.values(),
                key=lambda r: (
                    order.index(r.split("|")[1].strip())
                    if r.split("|")[1].strip() in order
                    else len(order)
                ),
            ),
            END,
        ]
    )
    if START in text:
        text = text[: text.index(START)] + section + text[text.index(END) + len(END) :]
    else:
        text = text.rstrip("\n") + "\n\n## Hardening (issue 14)\n\n" + section + "\n"
    RELIABILITY.write_text(text)
    print(section)


if __name__ == "__main__":
    main()
