"""The scenarios, in the order they run, each against servers started for it and stopped after.

All figures of one `make bench` come from one run on one machine, so the ratios compare
like with like even when the machine is busy with other work.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bench import databases, dataset, hotpath, limiter_memory, load, lock_hold, loop_lag
from bench.load import Result
from bench.servers import ROOT, Server, start_ceiling, start_frsync, start_prism

DATA = ROOT / "bench" / ".data" / "suite"
RESULTS = ROOT / "bench" / "results"
SECONDS = float(os.environ.get("BENCH_SECONDS", "15"))
WARMUP = float(os.environ.get("BENCH_WARMUP", "3"))


def _free_port() -> int:
    # Other runs (other checkouts' benches, tests) share the machine: never a fixed port.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


OPEN_LOOP_RATE = 1000.0


@dataclass
class Run:
    results: list[Result] = field(default_factory=list)
    pending: dict[str, str] = field(default_factory=dict)  # scenario → why it did not run
    memory: limiter_memory.MemoryResult | None = None
    profile: hotpath.Profile | None = None
    core_vs_raw: dict[str, float] | None = None
    push: str | None = None
    setup_seconds: dict[str, float] = field(default_factory=dict)
    lock_hold: lock_hold.LockHoldResult | None = None
    profile_before: hotpath.Profile | None = None  # BENCH_BASELINE_SRC's code, same load
    # Event-loop lag of the SQLite 2-worker PATCH: under wrk's saturating load (the loop is
    # never idle, so a wakeup also waits its turn behind ready requests), and at 1,000/s
    # offered (the loop has idle time: a late wakeup is a call that held it).
    stalls: loop_lag.StallResult | None = None
    stalls_fixed_rate: loop_lag.StallResult | None = None

    def get(self, name: str) -> Result | None:
        return next((r for r in self.results if r.name == name), None)


def _log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


@contextmanager
def _serving(start: Callable[[], Server]) -> Iterator[Server]:
    server = start()
    try:
        yield server
    finally:
        server.stop()


def _targets() -> Path:
    return DATA / "targets.txt"


def _wrk_scenarios(run: Run, server: Server, label: str, modes: list[tuple[str, str, str]]) -> None:
    for name, mode, hostile in modes:
        _log(f"{label}: {name}")
        result = load.measure_wrk(
            f"{name} — {label}", server, SECONDS, WARMUP, mode, str(_targets()), hostile
        )
        run.results.append(result)


def _open_loop_scenario(run: Run, server: Server, label: str) -> None:
    name = f"PATCH at {OPEN_LOOP_RATE:g} req/s offered — {label}"
    _log(name)
    run.results.append(load.measure_open_loop(name, server, _targets(), OPEN_LOOP_RATE, SECONDS))


@contextmanager
def _baseline_code(baseline: str) -> Iterator[None]:
    """Servers started in the block run the code at `baseline` (a `src` folder)."""
    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = baseline
    try:
        yield
    finally:
        os.environ.pop("PYTHONPATH")
        if saved is not None:
            os.environ["PYTHONPATH"] = saved


def sqlite_scenarios(run: Run, workers: int, extra: bool) -> None:
    url = databases.fresh_sqlite(DATA / "pristine.db", DATA / f"run-{workers}.db")
    label = f"SQLite, {workers} worker{'s' if workers > 1 else ''}"
    log = RESULTS / f"server-sqlite-{workers}.log"
    with _serving(lambda: start_frsync(label, url, _free_port(), workers, log)) as server:
        modes = [("floor: GET /healthz", "healthz", "0"), ("PATCH", "patch", "0")]
        _wrk_scenarios(run, server, label, modes)
        if extra:
            _wrk_scenarios(run, server, label, [
                ("GET /fulfillment-requests/{id}", "get", "0"),
                ("GET /fulfillment-requests (filtered page)", "list", "0"),
                ("PATCH + 10% hostile/foreign", "patch", "0.1"),
            ])  # fmt: skip
            _open_loop_scenario(run, server, label)
    if extra:
        stall_scenario(run, label, workers)
    ceiling_scenarios(run, label, workers, extra, lambda: databases.fresh_sqlite(
        DATA / "pristine.db", DATA / f"run-ceiling-{workers}.db"))  # fmt: skip
    baseline = os.environ.get("BENCH_BASELINE_SRC")
    if baseline:
        before_scenario(run, label, workers, baseline)


def stall_scenario(run: Run, label: str, workers: int) -> None:
    """Issue 20's longest event-loop stall under PATCH load, on a server of its own: the
    sampler's wakeups (1,000 a second per worker, ~3 % of a core each when idle) then weigh
    on no other figure, and the window holds the measured PATCH run alone, not its warm-up."""
    url = databases.fresh_sqlite(DATA / "pristine.db", DATA / f"run-stalls-{workers}.db")
    log = RESULTS / f"server-stalls-{workers}.log"
    name = f"event-loop lag sampled — {label}"
    start = lambda: start_frsync(  # noqa: E731
        name, url, _free_port(), workers, log, loop_lag_sample_ms=loop_lag.SAMPLE_MS
    )
    with _serving(start) as server:
        _log(f"{name}: PATCH")
        load.wrk(server.base_url, WARMUP, "patch", str(_targets()), "0")
        before = loop_lag.read(server)
        load.wrk(server.base_url, SECONDS, "patch", str(_targets()), "0")
        after = loop_lag.read(server)
        run.stalls = loop_lag.during(before, after)
        _log(f"{name}: PATCH at {OPEN_LOOP_RATE:g} req/s offered")
        load.open_loop(server.base_url, _targets(), OPEN_LOOP_RATE, SECONDS)
        run.stalls_fixed_rate = loop_lag.during(after, loop_lag.read(server))


def ceiling_scenarios(
    run: Run, label: str, workers: int, fixed_rate: bool, database: Callable[[], str]
) -> None:
    """bench/ceiling.py on the same data and load: the stack's own limit, same run."""
    log = RESULTS / f"server-ceiling-{workers}.log"
    name = f"ceiling (bare ASGI, one-row UPDATE) — {label}"
    with _serving(lambda: start_ceiling(name, database(), _free_port(), workers, log)) as server:
        _wrk_scenarios(run, server, name, [("PATCH", "patch", "0")])
        if fixed_rate:
            _open_loop_scenario(run, server, name)


def before_scenario(run: Run, label: str, workers: int, baseline: str) -> None:
    """The PATCH of the code at BENCH_BASELINE_SRC (`make bench BASELINE=<commit>`), same run."""
    url = databases.as_0005(
        databases.fresh_sqlite(DATA / "pristine.db", DATA / f"run-before-{workers}.db")
    )
    log = RESULTS / f"server-before-{workers}.log"
    name = f"before (BASELINE code) — {label}"
    try:
        with _baseline_code(baseline):
            server = start_frsync(name, url, _free_port(), workers, log)
    except RuntimeError as error:
        run.pending[name] = f"the baseline code did not start: {error}"
        return
    try:
        _wrk_scenarios(run, server, name, [("PATCH", "patch", "0")])
    finally:
        server.stop()


def postgres_scenarios(run: Run) -> None:
    name = "PostgreSQL + Redis, 2 workers"
    try:
        _log("building the PostgreSQL database")
        run.setup_seconds["postgres load"] = databases.build_postgres()
    except Exception as error:  # the backend may be unfinished or the server away
        run.pending[name] = f"setup failed: {type(error).__name__}: {error}"[:300]
        return
    log = RESULTS / "server-postgres.log"
    start = lambda: start_frsync(  # noqa: E731
        name, databases.PG_URL, _free_port(), 2, log, redis_url=databases.REDIS_URL
    )
    with _serving(start) as server:
        _wrk_scenarios(run, server, name, [("floor: GET /healthz", "healthz", "0"),
                                           ("PATCH", "patch", "0")])  # fmt: skip
        _open_loop_scenario(run, server, name)
    ceiling_scenarios(run, name, 2, False, lambda: databases.PG_URL)


def lock_hold_scenario(run: Run) -> None:
    _log("SQLite, 2 workers: another process holds the write lock for 2 s")
    work = DATA / "run-lock.db"
    url = databases.fresh_sqlite(DATA / "pristine.db", work)
    log = RESULTS / "server-lock-hold.log"
    with _serving(lambda: start_frsync("lock hold", url, _free_port(), 2, log)) as server:
        run.lock_hold = lock_hold.measure(server, work, _targets())


def _check_prism_answers_204(server: Server) -> None:
    body = b'{"accountingSynced": true, "externalAccountingId": "QB-1", "items": []}'
    request = urllib.request.Request(
        f"{server.base_url}/fulfillment-requests/1/accounting-sync", body, method="PATCH",
        headers={"X-API-TOKEN": dataset.token(0), "Content-Type": "application/json"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=5) as answer:
        if answer.status != 204:
            raise RuntimeError(f"Prism answered the PATCH with {answer.status}, not 204")


def prism_scenario(run: Run) -> None:
    name = "Prism mock (alternative)"
    try:
        server = start_prism(_free_port(), RESULTS / "prism.log")
    except RuntimeError as error:
        run.pending[name] = str(error)
        return
    try:
        _check_prism_answers_204(server)
        _wrk_scenarios(run, server, name, [("PATCH", "patch", "0")])
    finally:
        server.stop()


def memory_scenario(run: Run) -> None:
    _log("limiter memory: 100,000 distinct tokens")
    url = databases.fresh_sqlite(DATA / "pristine.db", DATA / "run-memory.db")
    log = RESULTS / "server-memory.log"
    # A slow refill (0.001/s): after its one hit a bucket stays "in use" for 1,000 s, so
    # none of the 100,000 expires and is pruned before the RSS is read.
    start = lambda: start_frsync("memory", url, _free_port(), 1, log, rate="0.001", burst="40")  # noqa: E731
    with _serving(start) as server:
        run.memory = limiter_memory.server_rss(server, DATA / "memory_tokens.txt")


def profile_scenario(run: Run) -> None:
    """py-spy on a 1-worker SQLite server under PATCH load; with BENCH_BASELINE_SRC set to
    another checkout's `src` (e.g. `git archive` of an older commit), that code too, so the
    profile before and after a change comes from one run."""
    if hotpath.py_spy() is None:
        run.pending["profile"] = "py-spy is not installed (pip install py-spy)"
        return
    _log("profiling PATCH on one SQLite worker")
    run.profile = _profile("profile")
    baseline = os.environ.get("BENCH_BASELINE_SRC")
    if baseline:
        _log(f"profiling PATCH on one SQLite worker, code from {baseline}")
        try:
            with _baseline_code(baseline):
                run.profile_before = _profile("profile-before", as_baseline=True)
        except RuntimeError as error:
            # The database is taken back to revision 0005 (as for the "before" PATCH); code
            # older than that refuses to start on it, so that run has no "before" profile.
            run.pending["profile-before"] = f"the baseline code did not start: {error}"


def _profile(name: str, as_baseline: bool = False) -> hotpath.Profile:
    url = databases.fresh_sqlite(DATA / "pristine.db", DATA / f"run-{name}.db")
    if as_baseline:
        url = databases.as_0005(url)
    log = RESULTS / f"server-{name}.log"
    with _serving(lambda: start_frsync(name, url, _free_port(), 1, log)) as server:
        return hotpath.profile_patch(server, _targets(), 10, RESULTS / f"pyspy-{name}.txt")


def core_vs_raw_scenario(run: Run) -> None:
    _log("SQLAlchemy Core vs raw sqlite3")
    command = [sys.executable, "-m", "bench.store_core_vs_raw", "--json"]
    done = subprocess.run(command, capture_output=True, text=True, check=True, cwd=ROOT)
    run.core_vs_raw = json.loads(done.stdout.strip().splitlines()[-1])


def push_scenario(run: Run) -> None:
    script = ROOT / "bench" / "push_rate.py"
    if not script.exists():
        return
    _log("push efficiency (bench/push_rate.py)")
    command = [sys.executable, "-m", "bench.push_rate"]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=300)
    run.push = (done.stdout + done.stderr).strip()[-3000:]


def run_all() -> Run:
    DATA.mkdir(parents=True, exist_ok=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    run = Run()
    _log("building the SQLite database (once; kept in bench/.data)")
    run.setup_seconds["sqlite load"] = databases.build_sqlite(DATA / "pristine.db")
    dataset.write_targets(DATA / "targets.txt")
    dataset.write_memory_tokens(DATA / "memory_tokens.txt")
    sqlite_scenarios(run, 1, extra=False)
    sqlite_scenarios(run, 2, extra=True)
    lock_hold_scenario(run)
    prism_scenario(run)
    postgres_scenarios(run)
    memory_scenario(run)
    profile_scenario(run)
    core_vs_raw_scenario(run)
    push_scenario(run)
    return run
