"""Back-to-back pairs: this checkout against another checkout's code, the same load.

`python -m bench.pairs OTHER_SRC [--pairs 3] [--workers 1,2] [--seconds 8] [--postgres]
[--rate R]`

OTHER_SRC is the other checkout's `src` (e.g. `git worktree add /tmp/before <commit>`, then
`/tmp/before/src`). Each pair runs the other code, then this one, each on a fresh copy of the
bench database (SQLite) or the bench PostgreSQL database with Redis (`--postgres`, 2
workers), under `wrk -c32` (bench/wrk/frsync.lua). Prints PATCH/s, server CPU per 1,000
PATCHes and the ratio per pair: compare ratios within a pair, never across runs.

`--rate R`: instead of wrk's saturating load, R PATCH/s offered by `bench.openloop` (after
wrk's warm-up and the open loop's own), the servers' event-loop lag sampled every 1 ms; prints
the p50 and p99 and the 1-ms lag samples over 2 ms (issue 20's tail and stall goals).
"""

from __future__ import annotations

import argparse

from bench import databases, dataset, load, loop_lag
from bench.ab import _with_pythonpath
from bench.load import Result
from bench.loop_lag import StallResult
from bench.scenarios import DATA, RESULTS, WARMUP, _free_port
from bench.servers import Server, start_frsync

TARGETS = DATA / "targets.txt"


def _one(
    name: str, src: str | None, workers: int, seconds: float, postgres: bool, rate: float | None
) -> tuple[Result, StallResult | None]:
    if postgres:
        url, redis = databases.PG_URL, databases.REDIS_URL
    else:
        url, redis = databases.fresh_sqlite(DATA / "pristine.db", DATA / "pairs.db"), None
    lag = loop_lag.SAMPLE_MS if rate else None
    start = _with_pythonpath(
        src, lambda: start_frsync(name, url, _free_port(), workers, RESULTS / "pairs.log",
                                  redis_url=redis, loop_lag_sample_ms=lag)
    )  # fmt: skip
    server = start()
    try:
        if rate:
            return _open_loop(name, server, seconds, rate)
        return load.measure_wrk(name, server, seconds, WARMUP, "patch", str(TARGETS), "0"), None
    finally:
        server.stop()


def _open_loop(
    name: str, server: Server, seconds: float, rate: float
) -> tuple[Result, StallResult]:
    load.wrk(server.base_url, WARMUP, "patch", str(TARGETS), "0")
    before = loop_lag.read(server)
    result = load.measure_open_loop(name, server, TARGETS, rate, seconds)
    return result, loop_lag.during(before, loop_lag.read(server))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.pairs")
    parser.add_argument("other_src")
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--rate", type=float, help="PATCH/s offered, open loop (default: wrk)")
    args = parser.parse_args()
    DATA.mkdir(parents=True, exist_ok=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    if args.postgres:
        databases.build_postgres()
    else:
        databases.build_sqlite(DATA / "pristine.db")
    dataset.write_targets(TARGETS)
    workers = [2] if args.postgres else [int(w) for w in args.workers.split(",")]
    store = "PostgreSQL + Redis" if args.postgres else "SQLite"
    if args.rate:
        print("| store, workers | pair | p50 ms other → this | p99 ms other → this | lag samples "
              f"over 2 ms, longest, other → this ({args.rate:g} PATCH/s offered) |")  # fmt: skip
    else:
        print("| store, workers | pair | other PATCH/s | this PATCH/s | ratio "
              "| CPU s/1k other → this |")  # fmt: skip
    print("|---|---:|---|---|---|" if args.rate else "|---|---:|---:|---:|---:|---|")
    for count in workers:
        for n in range(args.pairs):
            other, other_lag = _one("other", args.other_src, count, args.seconds, args.postgres,
                                    args.rate)  # fmt: skip
            this, this_lag = _one("this", None, count, args.seconds, args.postgres, args.rate)
            if other_lag is not None and this_lag is not None:
                print(f"| {store}, {count} | {n + 1} | {other.p50_ms:.2f} → {this.p50_ms:.2f} | "
                      f"{other.p99_ms:.2f} → {this.p99_ms:.2f} | {_over(other_lag)} → "
                      f"{_over(this_lag)} |", flush=True)  # fmt: skip
            else:
                print(f"| {store}, {count} | {n + 1} | {other.rps:,.0f} | {this.rps:,.0f} | "
                      f"×{this.rps / other.rps:.3f} | {other.cpu_per_1k:.3f} → "
                      f"{this.cpu_per_1k:.3f} |", flush=True)  # fmt: skip


def _over(stalls: StallResult) -> str:
    longest = (
        f"{stalls.longest_s * 1000:.1f}"
        if stalls.longest_s is not None
        else f"≤ {stalls.at_most_s * 1000:g}"
    )
    return f"{stalls.over[loop_lag.GOAL]:,} of {stalls.samples:,}, longest {longest} ms"


if __name__ == "__main__":
    main()
