"""Before/after in one run: PATCH/s of this checkout, of the code at BENCH_BASELINE_SRC, and of
the bare-ASGI ceiling (bench/ceiling.py), SQLite, 1 and 2 workers, back to back, same load
(wrk -c32, bench/wrk/frsync.lua), each on a fresh copy of the same database.

`python -m bench.ab [SECONDS] [--postgres]` (BENCH_BASELINE_SRC=<a checkout's src> for
"before"; --postgres: PostgreSQL + Redis, 2 workers, instead of SQLite).
Prints a Markdown table and the ratios.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from bench import databases, dataset, load
from bench.load import Result
from bench.scenarios import DATA, RESULTS, WARMUP, _free_port
from bench.servers import Server, start_ceiling, start_frsync


def _measure(name: str, start: Callable[[], Server], seconds: float) -> Result:
    server = start()
    try:
        return load.measure_wrk(
            name, server, seconds, WARMUP, "patch", str(DATA / "targets.txt"), "0"
        )
    finally:
        server.stop()


def _with_pythonpath(path: str | None, start: Callable[[], Server]) -> Callable[[], Server]:
    def started() -> Server:
        saved = os.environ.get("PYTHONPATH")
        if path:
            os.environ["PYTHONPATH"] = path
        try:
            return start()
        finally:
            os.environ.pop("PYTHONPATH", None)
            if saved is not None:
                os.environ["PYTHONPATH"] = saved

    return started


def _round(workers: int, baseline: str | None, seconds: float) -> dict[str, Result]:
    """Ceiling, after and (with a baseline) before, back to back, each on a fresh copy."""

    def fresh() -> str:
        return databases.fresh_sqlite(DATA / "pristine.db", DATA / f"ab-{workers}.db")

    log = RESULTS / f"ab-{workers}.log"
    kinds: list[tuple[str, Callable[[], Server]]] = [
        ("ceiling", lambda: start_ceiling("ceiling", fresh(), _free_port(), workers, log)),
        ("after", lambda: start_frsync("after", fresh(), _free_port(), workers, log)),
    ]
    if baseline:

        def before() -> Server:
            return start_frsync("before", databases.as_0005(fresh()), _free_port(), workers, log)

        kinds.append(("before", _with_pythonpath(baseline, before)))
    return {kind: _measure(f"{kind} {workers}", start, seconds) for kind, start in kinds}


def _postgres(baseline: str | None, seconds: float) -> dict[str, Result]:
    """The same on PostgreSQL + Redis, 2 workers: ceiling, after, before (one database)."""
    databases.build_postgres()
    log = RESULTS / "ab-postgres.log"
    redis = databases.REDIS_URL
    found = {
        "after": _measure("after pg", lambda: start_frsync(
            "after", databases.PG_URL, _free_port(), 2, log, redis_url=redis), seconds),
        "ceiling": _measure("ceiling pg", lambda: start_ceiling(
            "ceiling", databases.PG_URL, _free_port(), 2, log), seconds),
    }  # fmt: skip
    if baseline:

        def before() -> Server:
            url = databases.pg_as_0005()
            return start_frsync("before", url, _free_port(), 2, log, redis_url=redis)

        found["before"] = _measure("before pg", _with_pythonpath(baseline, before), seconds)
    return found


def main() -> None:
    numbers = [arg for arg in sys.argv[1:] if not arg.startswith("--")]
    seconds = float(numbers[0]) if numbers else 10.0
    DATA.mkdir(parents=True, exist_ok=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    databases.build_sqlite(DATA / "pristine.db")
    dataset.write_targets(DATA / "targets.txt")
    baseline = os.environ.get("BENCH_BASELINE_SRC")
    if "--postgres" in sys.argv:
        rows = [(2, _postgres(baseline, seconds))]
    else:
        rows = [(workers, _round(workers, baseline, seconds)) for workers in (1, 2)]
    print("| SQLite workers | code | PATCH/s | p50 ms | p99 ms | CPU s / 1k | statuses |")
    print("|---:|---|---:|---:|---:|---:|---|")
    for workers, found in rows:
        for kind, r in found.items():
            print(f"| {workers} | {kind} | {r.rps:,.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | "
                  f"{r.cpu_per_1k:.3f} | {r.statuses} |")  # fmt: skip
    for workers, found in rows:
        after, ceiling = found["after"].rps, found["ceiling"].rps
        line = f"{workers} worker(s): after ÷ ceiling {after / ceiling:.2f}"
        if "before" in found:
            line += f"; after ÷ before {after / found['before'].rps:.2f}"
        print(line)


if __name__ == "__main__":
    main()
