"""Run the fault and load scenarios and rewrite RELIABILITY.md's "Faults and load" section.

    python -m bench.faults_report           # the short versions (the ones CI runs)
    python -m bench.faults_report --full    # 100 kill -9 rounds per store, a 10 s PostgreSQL
                                            # outage, a 10-minute soak, 300 + 300 slow
                                            # clients for 30 s

The scenarios are the code in `tests/faults/`, so a figure here is what the tests assert on.
Only the text between `<!-- faults:start -->` and `<!-- faults:end -->` is replaced.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from tests.faults import postgres_faults as pg
from tests.faults import redis_faults as rf
from tests.faults import shutdown as sd
from tests.faults import slow_clients as sc
from tests.faults.kill9 import Kill9Result, run_kill9
from tests.faults.soak import SoakResult, run_soak

RELIABILITY = Path(__file__).resolve().parent.parent / "RELIABILITY.md"
START, END = "<!-- faults:start -->", "<!-- faults:end -->"
SKELETON = f"""# Reliability

## Security

<!-- security:start -->
<!-- security:end -->

## Faults and load

{START}
{END}
"""

Row = tuple[str, str, str]  # scenario, figures, verdict


def _verdict(ok: bool) -> str:
    return "pass" if ok else "**FAIL**"


def _kill9_row(result: Kill9Result) -> Row:
    figures = (
        f"{result.iterations} kills; {result.acknowledged} writes answered 204 before a kill; "
        f"torn FRs {result.torn}; acknowledged-then-missing {result.missing}; "
        f"state ≠ newest history {result.stale}; unknown values {result.unknown}; "
        f"median restart to /readyz 200 {result.median_restart:.2f} s "
        f"(max {max(result.restart_seconds, default=0):.2f} s)"
    )
    if result.store == "sqlite":
        figures += f"; integrity_check not ok {result.integrity_failures}×"
    return f"kill -9 mid-write, {result.store}", figures, _verdict(result.ok)


def _pg_row(result: pg.PhaseResult | pg.PoolResult, name: str) -> Row:
    statuses = ", ".join(f"{k}: {v}" for k, v in sorted(result.statuses.items()))
    recovery = "none" if result.recovery_seconds is None else f"{result.recovery_seconds:.2f} s"
    figures = (
        f"answers {{{statuses}}}; not 204/503+Retry-After {result.bad}; "
        f"slowest {result.max_seconds:.2f} s (budget {result.budget:g} s); "
        f"torn {result.verdict.torn}, 204-then-missing {result.verdict.missing}; "
        f"first success after the fault {recovery}"
    )
    return f"PostgreSQL: {name}", figures, _verdict(result.ok)


def _redis_row(phase: rf.RedisPhase) -> Row:
    statuses = ", ".join(f"{k}: {v}" for k, v in sorted(phase.statuses.items()))
    recovery = "none" if phase.recovery_seconds is None else f"{phase.recovery_seconds:.2f} s"
    figures = (
        f"answers {{{statuses}}}; slowest {phase.max_seconds:.2f} s (budget "
        f"{phase.budget:g} s = timeout {rf.REDIS_TIMEOUT:g} s + margin); admitted "
        f"{phase.admitted} ≤ bound {phase.admit_bound:.0f}; /readyz degraded seen: "
        f"{'yes' if phase.degraded_seen else 'no'}; back on Redis after {recovery}"
    )
    return f"Redis: {phase.name}", figures, _verdict(phase.ok)


def _soak_rows(result: SoakResult) -> list[Row]:
    statuses = ", ".join(f"{k}: {v}" for k, v in sorted(result.statuses.items()))
    rss, fds = result.drift()
    rows = [(
        f"soak {result.seconds:.0f} s, 2 workers, PostgreSQL + Redis",
        f"{result.requests} requests ({result.achieved_per_second:.0f}/s achieved of "
        f"{result.offered_per_second:.0f}/s offered, closed loop); answers {{{statuses}}}; "
        f"5xx or unanswered {result.server_errors}; unexpected status {result.unexpected}; "
        f"drift after warm-up: RSS {rss:+.1f} MiB, open fds {fds:+d} besides the clients' "
        f"connections (worst process); client connections still held after the load "
        f"closed them: {result.lingering_clients}",
        _verdict(result.ok),
    )]  # fmt: skip
    for window in result.windows:
        rows.append((
            f"  soak latency from {window.start:.0f} s",
            f"{window.requests} requests; p50 {window.p50 * 1000:.0f} ms, "
            f"p95 {window.p95 * 1000:.0f} ms, p99 {window.p99 * 1000:.0f} ms, "
            f"max {window.max * 1000:.0f} ms",
            "",
        ))  # fmt: skip
    return rows


def _counts(counter: dict[str, int]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in sorted(counter.items()))


def _slow_clients_row(result: sc.SlowClientsResult) -> Row:
    (h_min, h_med, h_max), (b_min, b_med, b_max) = result.spread("head"), result.spread("body")
    figures = (
        f"{result.slots} trickled heads + {result.slots} trickled PATCH bodies held open for "
        f"{result.seconds:g} s (a closed one replaced at once), 2 workers, SQLite; slow "
        f"connections closed by the server {result.closed}, left open past bound + "
        f"{sc.GIVE_UP:g} s {sum(result.not_closed.values())}; time to close, head "
        f"{h_min:.2f}/{h_med:.2f}/{h_max:.2f} s min/median/max (bound: header_timeout "
        f"{sc.HEADER_TIMEOUT:g} s), body {b_min:.2f}/{b_med:.2f}/{b_max:.2f} s (bound: "
        f"request_read_timeout {sc.READ_TIMEOUT:g} s + {sc.BODY_SLACK:g} s); answers "
        f"{{{_counts(result.answers)}}}; probe (1 PATCH/s, new connection) 204 "
        f"{result.probe_successes}/{result.probe_attempts}, max latency "
        f"{max(result.probe_latencies, default=0) * 1000:.0f} ms; 5xx {result.server_errors}; "
        f"slow connects refused {result.connect_failures}; tracebacks {result.tracebacks}"
    )
    return f"slow clients, {result.slots} + {result.slots}", figures, _verdict(result.ok)


_GROUP_TEXT = {
    "fast": f"body done {sd.FAST_AT:g} s after SIGTERM",
    "slow": f"body would be done at {sd.SLOW_AT:g} s",
    "locked": "waiting on a row lock inside its transaction",
}


def _shutdown_row(result: sd.ShutdownResult) -> Row:
    groups = []
    for group in result.groups:
        first, last = result.answered_at(group)
        statuses = result.statuses(group)
        groups.append(f"{sum(statuses.values())} {group} ({_GROUP_TEXT[group]}): "
                      f"{{{_counts(statuses)}}} at {first:.2f}–{last:.2f} s")  # fmt: skip
    figures = (
        f"SIGTERM with {len(result.outcomes)} slow PATCHes in flight, 2 workers, grace "
        f"{sd.GRACE:g} s; {'; '.join(groups)}; 204s stored with their history entry "
        f"{result.present}/{result.present + result.missing}; cut-off requests that left "
        f"nothing in the database {result.rolled_back}/{result.rolled_back + result.leaked}; "
        f"other 5xx {result.server_errors}; exit {result.exit_seconds:.2f} s after SIGTERM "
        f"(bound {result.bound:g} s), status {result.exit_code}, workers left "
        f"{result.workers_left}"
    )
    return f"SIGTERM with {sd.IN_FLIGHT} in flight, {result.store}", figures, _verdict(result.ok)


def _guarded(name: str, run: Callable[[], list[Row]]) -> list[Row]:
    started = time.monotonic()
    print(f"… {name}", flush=True)
    try:
        rows = run()
    except Exception as error:
        traceback.print_exc()
        rows = [(name, f"did not run: {type(error).__name__}: {error}"[:300], "**ERROR**")]
    print(f"  {name}: {time.monotonic() - started:.0f} s", flush=True)
    return rows


def collect(full: bool, workdir: Path) -> list[Row]:
    kills = 100 if full else 4
    rows: list[Row] = []
    for store in ("sqlite", "postgres"):
        where = workdir / f"kill9-{store}"
        where.mkdir()
        rows += _guarded(f"kill -9 {store}", lambda s=store, w=where: [  # type: ignore[misc]
            _kill9_row(run_kill9(s, kills, w))])  # fmt: skip

    def postgres() -> list[Row]:
        (workdir / "pg").mkdir()
        with pg.postgres_rig(workdir / "pg") as rig:
            found = [_pg_row(pg.terminate_backends(rig), "pg_terminate_backend under load")]
            outage = 10.0 if full else 3.0
            found.append(_pg_row(pg.outage(rig, outage), f"{outage:g} s outage"))
            found.append(_pg_row(pg.blackhole(rig, 2.0), "2 s blackhole"))
            found.append(_pg_row(pg.pool_exhaustion(rig), "pool exhausted (row lock held)"))
            tracebacks = rig.server.log_text().count("Traceback")
        (workdir / "pg-latency").mkdir()
        with pg.latency_rig(workdir / "pg-latency") as rig:
            found.append(_pg_row(pg.latency(rig, 0.05, 2.0), "+50 ms per packet"))
            tracebacks += rig.server.log_text().count("Traceback")
        found.append(("PostgreSQL: server log", f"{tracebacks} tracebacks (each is a 500)",
                      _verdict(tracebacks == 0)))  # fmt: skip
        return found

    rows += _guarded("PostgreSQL faults", postgres)

    def redis() -> list[Row]:
        (workdir / "redis").mkdir()
        with rf.redis_rig(workdir / "redis") as rig:
            return [_redis_row(phase(rig))
                    for phase in (rf.refused, rf.blackholed, rf.slow, rf.reset_mid_run,
                                  rf.flapping)]  # fmt: skip

    rows += _guarded("Redis faults", redis)
    seconds, window = (600.0, 60.0) if full else (30.0, 10.0)

    def soak() -> list[Row]:
        (workdir / "soak").mkdir()
        bursts = 30.0 if full else 10.0
        result = run_soak(workdir / "soak", seconds, window=window, sample_every=5.0,
                          burst_every=bursts)  # fmt: skip
        return _soak_rows(result)

    rows += _guarded("soak", soak)
    slots, held = (300, 30.0) if full else (100, 8.0)

    def slow_clients() -> list[Row]:
        (workdir / "slow").mkdir()
        return [_slow_clients_row(sc.run_slow_clients(workdir / "slow", slots, held))]

    rows += _guarded("slow clients", slow_clients)
    for store in ("sqlite", "postgres"):
        where = workdir / f"shutdown-{store}"
        where.mkdir()
        rows += _guarded(f"shutdown {store}", lambda s=store, w=where: [  # type: ignore[misc]
            _shutdown_row(sd.run_shutdown(s, w))])  # fmt: skip
    return rows


def render(rows: list[Row], full: bool, seconds: float) -> str:
    mode = "full (`--full`)" if full else "short (CI versions)"
    load = os.getloadavg()
    lines = [
        START,
        f"Generated by `python -m bench.faults_report{' --full' if full else ''}` — {mode} "
        f"run, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {seconds / 60:.1f} min, "
        f"{os.cpu_count()} CPUs ({platform.python_implementation()} "
        f"{platform.python_version()}), load average at the end {load[0]:.1f}: the machine "
        "is shared with other test runs, so latencies are upper bounds, not capacity.",
        "",
        "| scenario | figures | verdict |",
        "|---|---|---|",
        *(f"| {s} | {f} | {v} |" for s, f, v in rows),
        "",
        "Scenario code: `tests/faults/` (kill9.py, postgres_faults.py, redis_faults.py, "
        "soak.py, slow_clients.py, shutdown.py); faults are played by `tests/faults/proxy.py` "
        'between frsync and the real servers. "Missing" means a request answered 204 whose '
        "history entry (found by its X-Request-Id) is absent or shows another value; a later "
        "204 on the same FR may legitimately replace the value itself.",
        "",
        "Slow-client bounds (`src/frsync/server_protocol.py`): a request head must be complete "
        "within `FRSYNC_HEADER_TIMEOUT` (default 10 s) of the connection opening, else 408 and "
        "close; a body within `FRSYNC_REQUEST_READ_TIMEOUT` (default 10 s; the app answers "
        "408) + 1 s after the head, else the connection is closed. The scenario sets both to "
        f"{sc.HEADER_TIMEOUT:g} s; it passes when every slow connection is closed within its "
        f"bound + {sc.TOLERANCE:g} s (scheduling slack on a shared machine). Shutdown: "
        "`FRSYNC_SHUTDOWN_GRACE_SECONDS` (default 10 s) for requests in flight, then the rest "
        "are cancelled (503 shutting-down, transaction rolled back); the process must be gone "
        f"within grace + {sd.EXIT_MARGIN:g} s.",
        END,
    ]
    return "\n".join(lines)


def write_section(section: str, path: Path = RELIABILITY) -> None:
    text = path.read_text() if path.exists() else SKELETON
    if START not in text or END not in text:
        text = text.rstrip("\n") + f"\n\n## Faults and load\n\n{START}\n{END}\n"
    head, rest = text.split(START, 1)
    tail = rest.split(END, 1)[1]
    path.write_text(head + section + tail)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--full", action="store_true", help="the long versions (~25 min)")
    args = parser.parse_args()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="frsync-faults-") as workdir:
        rows = collect(args.full, Path(workdir))
    write_section(render(rows, args.full, time.monotonic() - started))
    print(f"wrote {RELIABILITY}")


if __name__ == "__main__":
    main()
