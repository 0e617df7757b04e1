"""How long `Sandbox()` takes to give its first admin answer (the pytest plugin's start-up).

    python bench/sandbox_startup.py [--rounds 5] [--baseline-src DIR] [--suite TEST_FILE]

Each round is a fresh Python process that imports frsync.testing (not timed), then times
`Sandbox()` and one admin call (`GET /__admin/faults`), then closes it. The template cache is
a fresh folder, so the first start builds the template (reported apart, "cold"); the median is
over the `--rounds` starts after it. `--baseline-src DIR` (a `src` folder of another commit,
e.g. `git archive <commit> src | tar -x -C DIR`) measures that code's `Sandbox()` the same way,
in the same run, for a before/after. `--suite TEST_FILE` also times `pytest TEST_FILE` and
`pytest -n 2 TEST_FILE` (wall clock, three rounds alternating, in a copy of the file's folder).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SRC = Path(__file__).parents[1] / "src"
ROUND = """
import time
from frsync.testing import Sandbox

started = time.perf_counter()
sandbox = Sandbox()
sandbox.faults()
print(time.perf_counter() - started)
sandbox.close()
"""


def one_start(src: Path, cache: Path) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRSYNC_")}
    env.update(PYTHONPATH=str(src), FRSYNC_SANDBOX_CACHE=str(cache))
    done = subprocess.run(
        [sys.executable, "-c", ROUND], env=env, capture_output=True, text=True, timeout=300
    )
    if done.returncode != 0:
        raise SystemExit(f"a start failed:\n{done.stderr[-2000:]}")
    return float(done.stdout.split()[-1])


def measure(name: str, src: Path, rounds: int) -> None:
    with tempfile.TemporaryDirectory(prefix="frsync-bench-cache-") as cache:
        cold = one_start(src, Path(cache))
        warm = [one_start(src, Path(cache)) for _ in range(rounds)]
    print(
        f"{name}: median {statistics.median(warm):.3f} s over {rounds} starts"
        f" ({', '.join(f'{t:.3f}' for t in warm)}); first start {cold:.3f} s",
        flush=True,
    )


def time_suite(test_file: Path, rounds: int = 3) -> None:
    """Wall time of a test file run serially and with two xdist workers, alternating."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FRSYNC_", "PYTEST_"))}
    walls: dict[str, list[float]] = {"serial": [], "-n 2": []}
    with tempfile.TemporaryDirectory(prefix="frsync-bench-suite-") as folder:
        shutil.copy(test_file, folder)
        for _ in range(rounds):
            for name, extra in (("serial", []), ("-n 2", ["-n", "2"])):
                command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *extra]
                started = time.perf_counter()
                done = subprocess.run(command, cwd=folder, env=env, capture_output=True)
                walls[name].append(time.perf_counter() - started)
                if done.returncode != 0:
                    raise SystemExit(f"pytest {' '.join(extra)} failed:\n{done.stdout[-3000:]!r}")
    for name, times in walls.items():
        print(
            f"{test_file.name} {name}: median {statistics.median(times):.2f} s wall"
            f" ({', '.join(f'{t:.2f}' for t in times)})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--baseline-src", type=Path, help="another commit's src folder")
    parser.add_argument("--suite", type=Path, help="a test file to time serially and with -n 2")
    args = parser.parse_args()
    print(f"Sandbox() to its first admin answer; {os.cpu_count()} CPUs, load {os.getloadavg()}")
    if args.baseline_src:
        measure("before (baseline)", args.baseline_src.resolve(), args.rounds)
    measure("after (this checkout)", SRC, args.rounds)
    if args.baseline_src:
        measure("before again (noise check)", args.baseline_src.resolve(), args.rounds)
    if args.suite:
        time_suite(args.suite.resolve())


if __name__ == "__main__":
    main()
