"""`make bench`: start what is needed, run every scenario, stop it all, rewrite BENCHMARKS.md."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
from typing import Any

from bench import report, scenarios
from bench.hotpath import Profile
from bench.limiter_memory import MemoryResult
from bench.load import Result
from bench.lock_hold import LockHoldResult
from bench.loop_lag import StallResult
from bench.servers import PRISM, ROOT

LAST_RUN = scenarios.RESULTS / "last-run.json"


def _ensure_wrk() -> None:
    """wrk is a Debian package; install it if it is missing, or say why we cannot."""
    if shutil.which("wrk"):
        return
    print("bench: wrk is missing; installing it with apt-get", file=sys.stderr)
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "wrk"]):
        if subprocess.run(command, check=False).returncode != 0 or not shutil.which("apt-get"):
            sys.exit("bench: cannot install wrk (need root and apt-get: `apt-get install wrk`)")


def _ensure_prism() -> None:
    """Prism comes from npm into bench/.prism (not committed)."""
    if PRISM.exists():
        return
    if not shutil.which("npm"):
        print("bench: npm is missing; the Prism anchor will be reported as pending",
              file=sys.stderr)  # fmt: skip
        return
    target = str(ROOT / "bench" / ".prism")
    subprocess.run(["npm", "install", "--prefix", target, "@stoplight/prism-cli"], check=False)


def _load_last_run() -> scenarios.Run:
    raw = json.loads(LAST_RUN.read_text())
    run = scenarios.Run(pending=raw["pending"], core_vs_raw=raw["core_vs_raw"], push=raw["push"],
                        setup_seconds=raw["setup_seconds"])  # fmt: skip
    run.results = [Result(**result) for result in raw["results"]]
    if raw.get("lock_hold"):
        run.lock_hold = LockHoldResult(**raw["lock_hold"])
    if raw.get("stalls"):
        run.stalls = StallResult(**raw["stalls"])
    if raw.get("stalls_fixed_rate"):
        run.stalls_fixed_rate = StallResult(**raw["stalls_fixed_rate"])
    if raw["memory"]:
        run.memory = MemoryResult(**raw["memory"])
    run.profile = _profile(raw["profile"])
    run.profile_before = _profile(raw.get("profile_before"))
    return run


def _profile(p: dict[str, Any] | None) -> Profile | None:
    if not p:
        return None
    top = [[(name, count) for name, count in p[key]] for key in ("self_top", "inclusive_top")]
    return Profile(p["samples"], top[0], top[1], p["rps"])


def main() -> None:
    if sys.argv[1:] == ["--report-only"]:  # rewrite BENCHMARKS.md from the last run's figures
        report.write(_load_last_run(), ROOT / "BENCHMARKS.md")
        return
    _ensure_wrk()
    _ensure_prism()
    run = scenarios.run_all()
    raw = dataclasses.asdict(run)
    LAST_RUN.write_text(json.dumps(raw, indent=1, default=str))
    report.write(run, ROOT / "BENCHMARKS.md")
    print("bench: wrote BENCHMARKS.md", file=sys.stderr)
    invalid = [r.name for r in run.results if not r.valid()]
    if invalid:
        sys.exit(f"bench: invalid measurements (unexpected statuses): {', '.join(invalid)}")


if __name__ == "__main__":
    main()
