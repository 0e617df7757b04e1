"""Write BENCHMARKS.md from one run: machine, command, date, tables, ratios, goals, profile."""

from __future__ import annotations

import datetime
import os
import platform
import re
import subprocess
from pathlib import Path

from bench.hotpath import Profile
from bench.load import CONNECTIONS, THREADS, Result
from bench.loop_lag import GOAL, StallResult
from bench.scenarios import OPEN_LOOP_RATE, SECONDS, WARMUP, Run
from bench.servers import ROOT

SQLITE_1 = "SQLite, 1 worker"
SQLITE_2 = "SQLite, 2 workers"
PG = "PostgreSQL + Redis, 2 workers"


def _first_line(command: list[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return "not found"
    return ((done.stdout or done.stderr).strip().splitlines() or ["?"])[0]


def machine() -> list[str]:
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")),
               platform.processor())  # fmt: skip
    mem_kib = int(Path("/proc/meminfo").read_text().split()[1])
    prism = ROOT / "bench/.prism/node_modules/@stoplight/prism-cli/package.json"
    prism_version = _first_line(["node", "-p", f"require('{prism}').version"])
    return [
        f"- CPU: {cpu}, {os.cpu_count()} cores; RAM: {mem_kib / 1024**2:.0f} GiB",
        f"- Kernel: {platform.system()} {platform.release()}; Python {platform.python_version()}",
        f"- Load generator: {_first_line(['wrk', '--version'])}; "
        f"Node {_first_line(['node', '--version'])}; Prism {prism_version}",
        f"- Code measured: commit {_first_line(['git', '-C', str(ROOT), 'rev-parse', 'HEAD'])[:9]}"
        + (" plus uncommitted changes under src/" if _dirty() else ""),
    ]


def _dirty() -> bool:
    done = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "src"],
                          capture_output=True, text=True, check=False)  # fmt: skip
    return bool(done.stdout.strip())


def _status_mix(result: Result) -> str:
    total = sum(result.statuses.values()) or 1
    parts = sorted(result.statuses.items(), key=lambda kv: -kv[1])
    return ", ".join(f"{status}: {100 * count / total:.1f}%" for status, count in parts)


def results_table(run: Run) -> list[str]:
    lines = [
        "| scenario | req/s | p50 ms | p99 ms | server CPU s / 1k req | peak RSS per worker "
        "(MiB) | status mix | socket errors / timeouts | valid | load generator CPU |",
        "|---|---:|---:|---:|---:|---|---|---:|---|---:|",
    ]
    for r in run.results:
        lines.append(
            f"| {r.name} | {r.rps:,.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | {r.cpu_per_1k:.3f} | "
            f"{', '.join(f'{m:.0f}' for m in r.peak_rss_mib)} | {_status_mix(r)} | "
            f"{r.socket_errors} | "
            f"{'yes' if r.valid() else '**NO**'} | {100 * r.generator_cpu_share:.0f}% of a core |"
        )
    for name, why in run.pending.items():
        lines.append(f"| {name} | pending: {why} | | | | | | | | |")
    return lines


def _rps(run: Run, name: str) -> float | None:
    result = run.get(name)
    return result.rps if result and result.valid() else None


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}" if a and b else "n/a"


def ratios(run: Run) -> list[str]:
    prism = _rps(run, "PATCH — Prism mock (alternative)")
    lines = ["| ratio | value |", "|---|---:|"]
    for label in (SQLITE_1, SQLITE_2, PG):
        patch = _rps(run, f"PATCH — {label}")
        floor = _rps(run, f"floor: GET /healthz — {label}")
        lines.append(f"| PATCH ÷ Prism ({label}) | {_ratio(patch, prism)} |")
        lines.append(f"| PATCH ÷ floor, same server ({label}) | {_ratio(patch, floor)} |")
    for label in (SQLITE_1, SQLITE_2, PG):
        patch, ceiling = _rps(run, f"PATCH — {label}"), _rps(run, f"PATCH — {CEILING} — {label}")
        lines.append(f"| PATCH ÷ bare-ASGI ceiling ({label}) | {_ratio(patch, ceiling)} |")
    sqlite, pg = _rps(run, f"PATCH — {SQLITE_2}"), _rps(run, f"PATCH — {PG}")
    lines.append(
        f"| PATCH PostgreSQL + Redis ÷ PATCH SQLite (2 workers each) | {_ratio(pg, sqlite)} |"
    )
    return lines


CEILING = "ceiling (bare ASGI, one-row UPDATE)"
BEFORE = "before (BASELINE code)"


def _p99(run: Run, name: str) -> float | None:
    result = run.get(name)
    return result.p99_ms if result and result.valid() else None


def _goal_row(measure: str, before: str, value: float | None, goal: str, ok: bool) -> str:
    shown = "n/a" if value is None else f"{value:.2f}"
    return f"| {measure} | {before} | {shown} | {goal} | {_verdict(_met(value, ok))} |"


def _quotient(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None


def hot_path_goals(run: Run) -> list[str]:
    """Issue 20's goal table: every ratio from this run ("before" = the BASELINE code's PATCH
    measured in this run, when `make bench BASELINE=<commit>` gave one)."""
    patch1, patch2 = _rps(run, f"PATCH — {SQLITE_1}"), _rps(run, f"PATCH — {SQLITE_2}")
    fixed = f"PATCH at {OPEN_LOOP_RATE:g} req/s offered — "
    rows = [
        ("PATCH/s ÷ the BASELINE code's, SQLite, 1 worker", "1",
         _quotient(patch1, _rps(run, f"PATCH — {BEFORE} — {SQLITE_1}")), "≥ 2.5", 2.5, True),
        ("PATCH/s ÷ the BASELINE code's, SQLite, 2 workers", "1",
         _quotient(patch2, _rps(run, f"PATCH — {BEFORE} — {SQLITE_2}")), "≥ 2.5", 2.5, True),
        ("PATCH/s ÷ Prism, SQLite, 2 workers", "2.0–2.97",
         _quotient(patch2, _rps(run, "PATCH — Prism mock (alternative)")), "≥ 5", 5, True),
        ("PATCH/s ÷ bare-ASGI ceiling, SQLite, 2 workers", "~0.15",
         _quotient(patch2, _rps(run, f"PATCH — {CEILING} — {SQLITE_2}")), "≥ 0.40", 0.4, True),
        ("PostgreSQL + Redis ÷ SQLite, 2 workers", "0.26–0.49",
         _quotient(_rps(run, f"PATCH — {PG}"), patch2), "≥ 0.60", 0.6, True),
        ("p99 at 1,000 PATCH/s ÷ the ceiling app's p99 at 1,000/s, SQLite, 2 workers", "—",
         _quotient(_p99(run, fixed + SQLITE_2), _p99(run, fixed + f"{CEILING} — {SQLITE_2}")),
         "≤ 2", 2, False),
    ]  # fmt: skip
    lines = ["| ratio | before | this run | goal | verdict |", "|---|---:|---:|---:|---|"]
    for measure, before, value, goal, bound, at_least in rows:
        ok = value is not None and (value >= bound if at_least else value <= bound)
        lines.append(_goal_row(measure, before, value, goal, ok))
    lines.append(_stall_row("under saturating PATCH load (wrk -c32)", run.stalls))
    lines.append(_stall_row(f"at {OPEN_LOOP_RATE:g} PATCH/s offered", run.stalls_fixed_rate))
    return lines


def _stall_row(load: str, stalls: StallResult | None) -> str:
    """The SQLite 2-worker server's own event-loop lag sampler, over one PATCH run."""
    measure = f"longest event-loop stall {load}, SQLite, 2 workers"
    if stalls is None or not stalls.samples:
        return f"| {measure} | ≥ 5 ms | not measured | < 2 ms | pending |"
    if stalls.longest_s is not None:
        longest = f"{1000 * stalls.longest_s:.1f} ms"
    else:  # not a new longest since start: the histogram bounds it
        longest = f"≤ {1000 * stalls.at_most_s:g} ms"
    over = stalls.over[GOAL]
    value = f"{longest} ({over:,} of {stalls.samples:,} 1-ms samples over 2 ms)"
    return f"| {measure} | ≥ 5 ms | {value} | < 2 ms | {_verdict(stalls.met())} |"


def _verdict(ok: bool | None) -> str:
    return "pending" if ok is None else ("**met**" if ok else "**not met**")


def _push_share(push: str | None) -> float | None:
    """The one-pusher row's "achieved / allowed" percentage from `bench/push_rate.py`'s table."""
    for line in (push or "").splitlines():
        if line.startswith("| one pusher"):
            cells = [cell.strip() for cell in line.strip("|").split("|")]
            return float(cells[4].rstrip("%"))
    return None


def _met(value: float | None, ok: bool) -> bool | None:
    return None if value is None else ok


def _ms(result: Result | None) -> str:
    return f"{result.p99_ms:.1f} ms" if result else "n/a"


def goals(run: Run) -> list[str]:
    """The hot-path issue's goal table (its "now" column is the run before that work), then
    the older goals that still hold."""
    prism = _rps(run, "PATCH — Prism mock (alternative)")
    sqlite1 = _rps(run, f"PATCH — {SQLITE_1}")
    floor1 = _rps(run, f"floor: GET /healthz — {SQLITE_1}")
    sqlite2 = _rps(run, f"PATCH — {SQLITE_2}")
    floor2 = _rps(run, f"floor: GET /healthz — {SQLITE_2}")
    pg = _rps(run, f"PATCH — {PG}")
    fixed_sqlite = run.get(f"PATCH at {OPEN_LOOP_RATE:g} req/s offered — {SQLITE_2}")
    fixed_pg = run.get(f"PATCH at {OPEN_LOOP_RATE:g} req/s offered — {PG}")
    hold = run.lock_hold
    r2 = sqlite2 / floor2 if sqlite2 and floor2 else None
    r1 = sqlite1 / floor1 if sqlite1 and floor1 else None
    rp = sqlite2 / prism if sqlite2 and prism else None
    rpg = pg / sqlite2 if pg and sqlite2 else None
    p99_ok = (
        None if not (fixed_sqlite and fixed_pg)
        else all(f.valid() and f.p99_ms <= 10 for f in (fixed_sqlite, fixed_pg))
    )  # fmt: skip
    worst = hold.healthz_worst_ms if hold else None
    rows = [
        ("PATCH ÷ /healthz, SQLite, 2 workers", "0.13", _ratio(sqlite2, floor2), "≥ 0.30",
         _met(r2, (r2 or 0) >= 0.30)),
        ("PATCH ÷ /healthz, SQLite, 1 worker", "0.20", _ratio(sqlite1, floor1), "≥ 0.35",
         _met(r1, (r1 or 0) >= 0.35)),
        ("PATCH ÷ Prism, same load (SQLite, 2 workers)", "1.7", _ratio(sqlite2, prism), "≥ 5",
         _met(rp, (rp or 0) >= 5)),
        ("PATCH PostgreSQL + Redis ÷ PATCH SQLite, 2 workers each", "0.34", _ratio(pg, sqlite2),
         "≥ 0.60", _met(rpg, (rpg or 0) >= 0.60)),
        (f"p99 at {OPEN_LOOP_RATE:,.0f} PATCH/s offered, SQLite / PostgreSQL + Redis",
         "9.2 ms / —", f"{_ms(fixed_sqlite)} / {_ms(fixed_pg)}", "≤ 10 ms both", p99_ok),
        ("worst /healthz while another process holds SQLite's write lock 2 s", "2,000 ms",
         f"{worst:,.1f} ms" if worst is not None else "n/a", "< 50 ms",
         _met(worst, (worst or 0) < 50)),
    ]  # fmt: skip
    lines = ["| measure | before (2026-11-26) | this run | goal | verdict |",
             "|---|---:|---:|---:|---|"]  # fmt: skip
    lines += [f"| {m} | {before} | {now} | {goal} | {_verdict(ok)} |"
              for m, before, now, goal, ok in rows]  # fmt: skip
    limiter = run.memory.limiter_bytes_per_token if run.memory else None
    push = _push_share(run.push)
    older = [
        ("≤ 200 bytes of limiter state per active token",
         f"{limiter:.0f} B" if limiter else "n/a", None if limiter is None else limiter <= 200),
        ("push ≥ 97% of the allowed rate (one pusher, its own token)",
         f"{push:.1f}%" if push is not None else "pending", None if push is None else push >= 97),
    ]  # fmt: skip
    lines += ["", "Older goals:", "", "| goal | where we stand | verdict |", "|---|---|---|"]
    lines += [f"| {goal} | {value} | {_verdict(ok)} |" for goal, value, ok in older]
    return lines


def lock_hold_section(run: Run) -> list[str]:
    h = run.lock_hold
    if h is None:
        return ["Not measured in this run."]
    statuses = ", ".join(f"{k}: {v:,}" for k, v in sorted(h.patch_statuses.items()))
    return [
        "`bench/lock_hold.py`: a 2-worker SQLite server under `wrk -c8` PATCH load; a probe "
        "asks for `/healthz` every 10 ms; two seconds in, another process takes the write "
        f"lock (`BEGIN IMMEDIATE`) and holds it {h.hold_seconds:.2f} s (busy timeout 2 s).",
        "",
        f"- `/healthz` answers overlapping the hold: {h.healthz_probes_during_hold}, median "
        f"{h.healthz_p50_ms:.1f} ms, worst **{h.healthz_worst_ms:.1f} ms** (worst outside "
        f"the hold: {h.healthz_worst_outside_ms:.1f} ms).",
        f"- PATCH statuses over the whole run: {statuses}; slowest PATCH {h.patch_max_ms:,.0f} ms "
        "(a PATCH that cannot get the lock within the busy timeout answers 503 at it).",
    ]


def memory_section(run: Run) -> list[str]:
    m = run.memory
    if m is None:
        return ["Not measured in this run."]
    return [
        f"- Limiter state alone (in process, `tracemalloc`, 100,000 distinct keys on the "
        f"in-memory GCRA store, key strings included): **{m.limiter_bytes_per_token:.0f} bytes "
        "per active token**.",
        f"- Whole server, 1 worker: VmRSS {m.server_rss_before_mib:.1f} MiB before and "
        f"{m.server_rss_after_mib:.1f} MiB after 100,000 distinct valid tokens made one request "
        f"each ({m.server_requests:,} requests; statuses {m.server_statuses}): "
        f"**{m.server_bytes_per_token:.0f} bytes per token**. This includes the token cache's "
        "entry per token (`api/auth.py` TokenCache, kept 1 s, bounded at 100,000) and allocator "
        "slack, so it is an upper bound for the limiter. The server ran with `--rate 0.001 "
        "--burst 40` so that no bucket expired (and was pruned) before the reading.",
    ]


def profile_section(run: Run) -> list[str]:
    p = run.profile
    if p is None:
        return ["Not profiled in this run."]
    lines = [
        f"py-spy (`record --rate 250 --nonblocking`, {p.samples:,} samples) on the only worker "
        f"of a 1-worker SQLite server under the PATCH load ({p.rps:,.0f} req/s while sampled). "
        "py-spy drops samples where the process is idle in the event loop's `epoll`, so shares "
        "are of busy time, over all of the worker's threads (the SQLite writer and the WAL "
        "checkpointer have their own). Native time (syscalls, SQLite's C code, waiting for "
        "the GIL) is charged to the Python frame that called it.",
        "",
        *_profile_tables(p),
    ]
    b = run.profile_before
    if b is not None:
        lines += [
            "",
            f"**Before** (the code of `BENCH_BASELINE_SRC`, same load, same run: {b.samples:,} "
            f"samples, {b.rps:,.0f} req/s while sampled):",
            "",
            *_profile_tables(b),
        ]
    return lines


def _profile_tables(p: Profile) -> list[str]:
    lines = ["Top 10 by self time:", "", "| share of samples | frame |", "|---:|---|"]
    lines += [f"| {100 * c / p.samples:.1f}% | `{name}` |" for name, c in p.self_top[:10]]
    ours = [(n, c) for n, c in p.inclusive_top if n.startswith("frsync/") and "cli/" not in n
            and "__main__" not in n]  # fmt: skip
    lines += ["", "frsync frames by inclusive time (the frame and all it calls):", "",
              "| share of samples | frame |", "|---:|---|"]  # fmt: skip
    lines += [f"| {100 * c / p.samples:.1f}% | `{name}` |" for name, c in ours[:10]]
    return lines


def core_section(run: Run) -> list[str]:
    c = run.core_vs_raw
    if c is None:
        return ["Not measured in this run."]
    return [
        f"`python -m bench.store_core_vs_raw`: the PATCH transaction (BEGIN IMMEDIATE, read "
        "state and items, plan, update FR and items, insert history, COMMIT) on copies of the "
        f"benchmark database, {c['transactions']:.0f} transactions a round, median of "
        f"{c['rounds']:.0f} alternating rounds:",
        "",
        f"- raw `sqlite3` (`SqliteStore.sync_accounting` itself): **{c['raw_us']:.0f} µs**",
        f"- SQLAlchemy Core, statements built once, same pragmas: **{c['core_us']:.0f} µs** "
        f"— **{c['core_over_raw']:.2f}×** raw.",
        "",
        "Both include the disk: commits write the WAL, and checkpoints fsync it.",
    ]


def push_section(run: Run) -> list[str]:
    if run.push is None:
        return ["TODO: push efficiency is pending — `bench/push_rate.py` (from the client "
                "issue) did not exist when this file was generated; `make bench` runs it "
                "once it does."]  # fmt: skip
    return ["`python -m bench.push_rate`:", "", "```", run.push, "```"]


def method() -> list[str]:
    return [
        "- Each server is a real process (`python -m frsync serve … --workers N`), started "
        "for its scenarios, waited on until `/readyz` answers, stopped with SIGTERM.",
        f"- Closed-loop load: `wrk -t{THREADS} -c{CONNECTIONS} -d{SECONDS:g}s` after a "
        f"{WARMUP:g} s warm-up (discarded), script `bench/wrk/frsync.lua`, a separate process "
        "on loopback. Requests walk 100,000 targets with a prime stride: 10,000 tokens "
        "(account, source and channel scoped) over 100,000 FRs, PATCH bodies with 1–3 items "
        "of that FR and values that change on every request (so every 204 writes), one in "
        'five a failure body. The "load generator CPU" column is wrk\'s own CPU time.',
        "- Hostile mix: one request in ten is, in turn, an FR of another account (404), "
        "malformed JSON (400) or an unknown token (401).",
        f"- Fixed-rate latency: `python -m bench.openloop`, an open-loop asyncio generator "
        f"(a separate process): request n is due at start + n/{OPEN_LOOP_RATE:g} s whatever "
        "happened before, and its latency counts from that moment, so a stall is not hidden "
        "(wrk is closed-loop; wrk2 is not in Debian).",
        "- **Rate limiter on**, every request takes a token from its bucket, but the bench "
        "servers run with `--rate 1000000 --burst 1000000` (and the same for the per-address "
        "bucket of invalid tokens) so that the figures measure the server, not the 2 req/s "
        "contract. The access log stays on, written to a file, as in production.",
        "- A measurement is **valid** when wrk saw no socket errors and every status is one "
        "that some request was built to get (204 for valid PATCHes; 404/400/401 for the "
        "hostile ones), within what can be in flight at the end.",
        "- CPU s / 1k req: utime+stime of the server's whole process tree (from /proc) over "
        "the measured run, per 1,000 answered requests. Peak RSS: VmHWM of each worker.",
        "- SQLite: WAL, synchronous=NORMAL, file on the machine's ext4 disk (an fsync here "
        "costs 1.5–3 ms). PostgreSQL 15 and Redis 7 on the same machine (Redis db 13).",
        "- Prism: `@stoplight/prism-cli` mocking `src/frsync/api/openapi.json` (checked to "
        "answer the PATCH with 204 before measuring), same wrk load.",
    ]


READ_SIDE = Path(__file__).parent / "results" / "read_side.md"
SANDBOX = Path(__file__).parent / "results" / "sandbox.md"
# Changes made after profiling, with the A/B figures measured when each went in (8 s wrk runs
# of bench/scenarios.py's SQLite PATCH scenario, same machine, minutes apart).
# The hot-path issue's changes, with what each bought (figures from the runs named in each).
HOT_PATH_CHANGES = [
    "- **SQLite writes on a writer thread, reads on the loop that never wait.** The lock "
    "wait (`BEGIN IMMEDIATE` polling from 25 µs to 1 ms) moved off the event loop to one "
    "writer thread per process with its own connection; the loop's read connection has "
    "busy_timeout 0 and retries SQLITE_BUSY after an `await`. Worst `/healthz` while "
    "another process holds the write lock 2 s, 2 workers under PATCH load: 2,094 ms before,"
    " 26 ms after (`bench/lock_hold.py`, back to back; this run's figure is in the goals). "
    "Reads stay on the loop: in WAL mode a reader never waits for a writer (2 s of a held "
    "write lock with a writer polling it: 487,216 reads, 0 SQLITE_BUSY), and a reader "
    "thread would add a thread handoff to every GET and token lookup.",
    "- **Group commit.** Writes that queue while a transaction runs share the next one (each "
    "in a SAVEPOINT; at most 64), so BEGIN, COMMIT and the WAL frames of shared pages "
    "(index roots, the history table's last page) are paid once per batch; see the batch "
    "sizes below. It does not show as throughput on this machine: the PATCH's cost is "
    "dominated by the HTTP stack, auth and the access log (profile above), and the thread "
    "handoffs (the GIL passing between the loop and the writer, each a scheduler wake-up "
    "on a machine with a load average of 6–8) cost about what the saved commits save. "
    "A/B of the writer thread against a prototype that ran the same group commit on the "
    "loop (no thread): CPU per 1,000 PATCHes 0.38–0.46 s vs 0.38–0.44 s over two rounds, "
    "within the noise; the thread stayed because it keeps heavy writes (1,000-item PATCHes, "
    "loads) off the loop.",
    "- **The cost a split connection adds**: another connection's commit empties the read "
    "connection's page cache, so a token lookup right after a write costs 15.5 µs instead "
    "of 8.4 µs (`SqliteStore` pragmas, 1,000 lookups, writes every 0.5 ms).",
    "- **PostgreSQL: one round trip per PATCH** (`frsync_sync_accounting`, migration 0005) "
    "instead of four (BEGIN+lock, state, write, COMMIT); counted by "
    "`tests/store/test_postgres_round_trips.py`. 2 workers + Redis, 8 s of wrk each, back "
    "to back (load average 8.7): 245 → 543 PATCH/s, server CPU per 1,000 PATCHes 1.30 → "
    "0.84 s. The Redis bucket check was already one `EVALSHA` per request. What is left: "
    "a 1-worker py-spy profile puts 31% of the worker's samples in asyncpg's execute "
    "(encoding 17 parameters, the socket write, decoding the row), 9% in the Redis script "
    "call and 10% in the token lookup (a PostgreSQL round trip per token-cache miss); the "
    "rest is the HTTP stack, as on SQLite. Every PATCH is also one PostgreSQL commit, an "
    "fsync of its WAL, on the same two cores.",
    "- **The read side** keeps its code path (the same statements, on a connection with the "
    "same pragmas, on the loop) and its speed: `bench/read_side.py --sizes 1000000` run "
    "before/after twice, back to back, load average 7–9: GET by id 0.36 → 0.39 ms and "
    "0.40 → 0.34 ms (median), count not synced 3.55 → 14.54 ms and 7.77 → 5.42 ms, count "
    "synced 17.7 → 39.5 ms and 35.9 → 25.5 ms: whichever ran second was slower, the code "
    "did not decide it. The table below is this run's.",
    "- **What the thread costs at low load**: at 1,000 PATCH/s offered (2 workers) a batch "
    "holds about one write, and the two handoffs per PATCH cost CPU: 0.53 and 0.50 s per "
    "1,000 PATCHes before, 0.58 and 0.59 after (`bench.openloop`, 10 s, two back-to-back "
    "pairs, load average 1.7–2.2). p99 in those four runs: 57 and 138 ms before, 168 and "
    "37 ms after: the machine, not the code, sets that tail here.",
    "- **Reading the SQLite 2-worker PATCH row**: it is the first scenario on a fresh server, "
    "with a 3 s warm-up that leaves most of the 10,000 tokens out of the token cache; the "
    "hostile mix (90% the same PATCHes) runs later on the same server, warm.",
    "- Reading the profile: `Writer._serve`'s self time is the writer thread blocked on its "
    "empty queue, and `Checkpointer._run`'s is the checkpoint's copying and fsync: neither "
    "holds the event loop. py-spy cannot tell a thread blocked in C from one working.",
]

PROFILE_CHANGES = [
    "- Token lookups: with 10,000 tokens in rotation the 1 s token cache missed on almost "
    "every request (4.6% of PATCH samples in the first profile). Known tokens are now cached "
    "for a minute and dropped as soon as the store's count of revoked tokens changes, which "
    "each worker checks once a second (revocation still bites within 1 s).",
    "- WAL checkpoints: SQLite checkpointed (and fsynced) on the commit that crossed 1,000 "
    "WAL pages, stalling the event loop. A background thread now checkpoints every 0.2 s "
    "(`store/sqlite_checkpoint.py`); the inline checkpoint is only a backstop. 1 worker, "
    "PATCH p99 with the thread checkpointing every 1 s: 94 ms; every 0.2 s: 52 ms (no A/B "
    "against the old inline checkpoints was run on a quiet machine).",
    "- The write lock: SQLite's busy handler sleeps 1, 2, 5… ms between tries while the "
    "other worker holds the lock for ~0.1 ms. BEGIN IMMEDIATE now polls from 25 µs up. "
    "2 workers, PATCH: 2,268 → 2,832 req/s, p99 88 → 43 ms.",
    "- Timestamps: four per FR in every answer; integer arithmetic with the date cached per "
    "day instead of a datetime per field (about 4× cheaper per timestamp).",
    "- The PATCH reads the FR's state and its items in one statement instead of two.",
    "- Left in place: the access log line (~5% of samples; operators asked for it) and the "
    "partial indexes the read side needs, which make a PATCH that flips `accountingSynced` "
    "and `accountingError` write about 10 WAL pages instead of 4 (the benchmark's bodies "
    "flip them on every request: the worst case).",
]


_WRITER_LINE = re.compile(r"SQLite writer: (\d+) jobs in (\d+) transactions")


def batch_section() -> list[str]:
    """Group commit as it happened: each SQLite worker logs, when it stops, how many write
    jobs it committed in how many transactions."""
    lines = []
    for workers in (1, 2):
        log = ROOT / "bench" / "results" / f"server-sqlite-{workers}.log"
        found = _WRITER_LINE.findall(log.read_text()) if log.exists() else []
        for n, (jobs, transactions) in enumerate(found, start=1):
            jobs_n, tx_n = int(jobs), int(transactions)
            mean = jobs_n / tx_n if tx_n else 0.0
            lines.append(f"- SQLite, {workers} worker{'s' if workers > 1 else ''}, worker {n}: "
                         f"{jobs_n:,} writes in {tx_n:,} transactions ({mean:.1f} per commit) "
                         "over all of that server's scenarios")  # fmt: skip
    return lines or [
        "- Not in this run's server logs (the writer logs its totals at DEBUG). In the run of "
        "2026-11-27 08:06 UTC (INFO then): 1 worker 5.5 writes per commit; 2 workers 4.2 and "
        "2.9 (wrk -c32, all of each server's scenarios)."
    ]


def read_side_section() -> list[str]:
    """`bench/read_side.py` (10k → 1M FRs, run by `make bench` first) writes its own section."""
    if not READ_SIDE.exists():
        return ["## Read side (SQLite)", "", "Pending: run `python bench/read_side.py`.", ""]
    return [READ_SIDE.read_text().rstrip(), ""]


def sandbox_section() -> list[str]:
    """`bench/sandbox_reset.py` (reset time, PATCH cost of sandbox mode) writes its own."""
    if not SANDBOX.exists():
        return ["## Sandbox mode", "", "Pending: run `python bench/sandbox_reset.py`.", ""]
    return [SANDBOX.read_text().rstrip(), ""]


CONSOLE_BEGIN, CONSOLE_END = "<!-- console-overview: begin -->", "<!-- console-overview: end -->"


def console_section(path: Path) -> list[str]:
    """`bench/console_overview.py` (1,000,000 FRs: minutes to load) rewrites its own marked
    section when run; a `make bench` run keeps the last one rather than dropping it."""
    current = path.read_text() if path.exists() else ""
    begin, end = current.find(CONSOLE_BEGIN), current.find(CONSOLE_END)
    if begin < 0 or end < begin:
        return ["## Console", "", "Pending: run `python bench/console_overview.py`.", ""]
    return [current[begin : end + len(CONSOLE_END)], ""]


# A section written by hand from other runs says so in its heading ("## …, hand-run on …").
_HAND_RUN = re.compile(r"^## [^\n]*hand-run.*?(?=^## |^<!-- |\Z)", re.DOTALL | re.MULTILINE)


def hand_run_sections(path: Path) -> tuple[list[str], list[str]]:
    """The current file's hand-run sections, which a `make bench` run keeps rather than
    drops: those above "## Machine", and the others (they go before "## Sandbox mode")."""
    current = path.read_text() if path.exists() else ""
    machine = current.find("\n## Machine\n")
    top: list[str] = []
    rest: list[str] = []
    for found in _HAND_RUN.finditer(current):
        above = machine < 0 or found.start() < machine
        (top if above else rest).append(found.group().rstrip() + "\n")
    return top, rest


def write(run: Run, path: Path) -> None:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    top, rest = hand_run_sections(path)
    sections = [
        "# Benchmarks",
        "",
        f"Generated by `make bench` (`python -m bench`) on {now}. Every figure below comes "
        "from that one run, on this machine; rerun to refresh.",
        "",
        "> **The machine is shared and noisy**: 2 cores, with other engineers' test runs on "
        "it at the same time, and the load generator on the same 2 cores as the server. "
        "Read the ratios measured in the same run; do not trust one absolute figure.",
        "",
        *top,
        "## Machine", "", *machine(), "",
        "## Method", "", *method(), "",
        "## Results", "", *results_table(run), "",
        "## Ratios", "", *ratios(run), "",
        "## Goals", "", "Issue 20 (the PATCH at 2.5× its pace):", "", *hot_path_goals(run), "",
        "Earlier goals:", "", *goals(run), "",
        "## /healthz while another process holds the write lock", "", *lock_hold_section(run),
        "",
        "## Limiter memory per active token", "", *memory_section(run), "",
        "## `push` efficiency", "", *push_section(run), "",
        "## Profile of the PATCH path", "", *profile_section(run), "",
        "## What the profile led to", "", "The hot-path issue (one run's A/B figures, "
        "`BENCH_BASELINE_SRC` = the commit before it):", "", *HOT_PATH_CHANGES, "",
        "Group commit in this run:", "", *batch_section(), "",
        "Earlier:", "", *PROFILE_CHANGES, "",
        "## SQLAlchemy Core vs raw sqlite3 (the PATCH transaction)", "", *core_section(run), "",
        *rest,
        *sandbox_section(),
        *console_section(path),
        *read_side_section(),
    ]  # fmt: skip
    if run.setup_seconds:
        setup = ", ".join(f"{k} {v:.0f} s" for k, v in run.setup_seconds.items() if v)
        sections += ["Data setup this run: " + (setup or "SQLite file reused") + ".", ""]
    path.write_text("\n".join(sections))
