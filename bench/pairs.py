"""Back-to-back pairs: this checkout against another checkout's code, the same load.

`python -m bench.pairs OTHER_SRC [--pairs 3] [--workers 1,2] [--seconds 8] [--postgres]`

OTHER_SRC is the other checkout's `src` (e.g. `git worktree add /tmp/before <commit>`, then
`/tmp/before/src`). Each pair runs the other code, then this one, each on a fresh copy of the
bench database (SQLite) or the bench PostgreSQL database with Redis (`--postgres`, 2
workers), under `wrk -c32` (bench/wrk/frsync.lua). Prints PATCH/s, server CPU per 1,000
PATCHes and the ratio per pair: compare ratios within a pair, never across runs.
"""

from __future__ import annotations

import argparse

from bench import databases, dataset, load
from bench.ab import _with_pythonpath
from bench.load import Result
from bench.scenarios import DATA, RESULTS, WARMUP, _free_port
from bench.servers import start_frsync


def _one(name: str, src: str | None, workers: int, seconds: float, postgres: bool) -> Result:
    if postgres:
        url, redis = databases.PG_URL, databases.REDIS_URL
    else:
        url, redis = databases.fresh_sqlite(DATA / "pristine.db", DATA / "pairs.db"), None
    start = _with_pythonpath(
        src, lambda: start_frsync(name, url, _free_port(), workers, RESULTS / "pairs.log",
                                  redis_url=redis)
    )  # fmt: skip
    server = start()
    try:
        return load.measure_wrk(
            name, server, seconds, WARMUP, "patch", str(DATA / "targets.txt"), "0"
        )
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.pairs")
    parser.add_argument("other_src")
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--postgres", action="store_true")
    args = parser.parse_args()
    DATA.mkdir(parents=True, exist_ok=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    if args.postgres:
        databases.build_postgres()
    else:
        databases.build_sqlite(DATA / "pristine.db")
    dataset.write_targets(DATA / "targets.txt")
    workers = [2] if args.postgres else [int(w) for w in args.workers.split(",")]
    store = "PostgreSQL + Redis" if args.postgres else "SQLite"
    print(
        "| store, workers | pair | other PATCH/s | this PATCH/s | ratio | CPU s/1k other → this |"
    )
    print("|---|---:|---:|---:|---:|---|")
    for count in workers:
        for n in range(args.pairs):
            other = _one("other", args.other_src, count, args.seconds, args.postgres)
            this = _one("this", None, count, args.seconds, args.postgres)
            print(f"| {store}, {count} | {n + 1} | {other.rps:,.0f} | {this.rps:,.0f} | "
                  f"×{this.rps / other.rps:.3f} | {other.cpu_per_1k:.3f} → {this.cpu_per_1k:.3f} |",
                  flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
