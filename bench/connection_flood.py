"""One address holding 1,200 slow-header or idle keep-alive connections; another address's
requests answered, with their latency (issue 23 item 1). Loopback only, bounded: the flood
holds at most 1,200 sockets and stops by itself.

    python -m bench.connection_flood               # both modes, 30 s each (~80 s)
    python -m bench.connection_flood --seconds 10 slow

A 1-worker `frsync serve` with its default connection bounds (max_connections 1000, 200 per
address) on a SQLite copy of the basic fixture. The flood comes from 127.0.0.1 (each closed
socket reopened a second later), the probe from 127.0.0.2: every 0.1 s a fresh connection
asks `/healthz` or an FR alternately. Goal: every probe answered, p99 < 100 ms.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from tests.faults.flood import FloodResult, run_flood
from tests.ops.conftest import env_for, load_with_cli, serve
from tests.support import BASIC_FIXTURE, TOKENS

CONNECTIONS = 1200
GOAL_P99 = 0.100


def flood(mode: str, seconds: float, connections: int = CONNECTIONS) -> FloodResult:
    with tempfile.TemporaryDirectory(prefix="frsync-flood-") as scratch:
        workdir = Path(scratch)
        load_with_cli(env_for(workdir), workdir, BASIC_FIXTURE)
        # The probe's FR reads must not meet the rate limit: this is about connections.
        with serve(workdir, log_requests="false", burst="100000") as server:
            return run_flood(server.base, TOKENS["account1"], 221, mode, connections, seconds)


def passed(result: FloodResult) -> bool:
    return not result.failures and result.attempts > 0 and result.percentile(0.99) < GOAL_P99


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modes", nargs="*", help="slow, idle, or both (the default)")
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    modes = args.modes or ["slow", "idle"]
    if set(modes) - {"slow", "idle"}:
        parser.error("modes are slow and idle")
    for mode in modes:
        result = flood(mode, args.seconds)
        print(f"{result.summary()} -> {'pass' if passed(result) else 'FAIL'}", flush=True)


if __name__ == "__main__":
    main()
