"""How close `frsync push` gets to the rate limit, and what two pushers on one token do.

Starts a real `frsync serve` (default bucket: 40 deep, 2 per second) on a scratch SQLite
database, then:

1. one `frsync push` of N rows (default 200) with a token nobody else uses: the rate it
   achieved against the most the bucket allows, 40 + 2·t requests t seconds after the first,
   and the 429s it met (target: >= 97 % of the allowed rate, zero 429s);
2. two `frsync push` processes at once, N/2 rows each, sharing one token: both must finish
   with every row applied once (none lost), the 429s they met retried.

The times come from the server (each row sets `accountingSynced`, so `accountingSyncedAt`
records when the server applied it), the 429 counts from each push's `--report`.

    python bench/push_rate.py [--rows 200]      # prints a markdown table (about 3 minutes)
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from frsync.client import Client

BURST, RATE = 40, 2.0
SOLO_TOKEN = "bench-solo-token-0123456789"
SHARED_TOKEN = "bench-shared-token-0123456789"
FRSYNC = [sys.executable, "-c", "from frsync.cli import main; main()"]
HEADER = "fulfillmentRequestId,accountingSynced,externalAccountingId,accountingError,items\n"


@dataclass
class Scenario:
    name: str
    rows: int
    rows_applied: int
    rate_limited: int
    retries: int
    seconds: float  # first applied row to last, by the server's clock
    exit_codes: list[int]
    pushers: str  # each pusher's 429s and when its last row was applied

    @property
    def allowed(self) -> float:
        return BURST + RATE * self.seconds

    @property
    def efficiency(self) -> float:
        return self.rows_applied / self.allowed


def fixture(rows: int) -> dict[str, Any]:
    def fr(fr_id: int, account: int) -> dict[str, Any]:
        return {"id": fr_id, "accountId": account, "sourceId": account * 10, "orderId": fr_id,
                "fulfillmentRequestNumber": f"FR-{fr_id}", "status": "Processed",
                "generatedAt": "2026-11-20T10:00:00.000Z"}  # fmt: skip

    return {
        "accounts": [{"id": 1, "name": "Solo"}, {"id": 2, "name": "Shared"}],
        "sources": [
            {"id": 10, "accountId": 1, "name": "S1"},
            {"id": 20, "accountId": 2, "name": "S2"},
        ],
        "fulfillmentRequests": [fr(i, 1) for i in range(1, rows + 1)]
        + [fr(100_000 + i, 2) for i in range(1, rows + 1)],
        "tokens": [
            {"token": SOLO_TOKEN, "type": "account", "id": 1},
            {"token": SHARED_TOKEN, "type": "account", "id": 2},
        ],
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def frsync_serve(workdir: Path, rows: int) -> Iterator[str]:
    """`frsync load` then `frsync serve` with the default bucket; yields the base URL."""
    database = f"sqlite:///{workdir / 'bench.db'}"
    (workdir / "fixture.json").write_text(json.dumps(fixture(rows)))
    subprocess.run([*FRSYNC, "load", str(workdir / "fixture.json"), "--database-url", database],
                   check=True, capture_output=True)  # fmt: skip
    port = free_port()
    server = subprocess.Popen(
        [*FRSYNC, "serve", "--database-url", database, "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "FRSYNC_RATE": str(RATE), "FRSYNC_BURST": str(BURST)},
    )  # fmt: skip
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(base_url)
        yield base_url
    finally:
        server.terminate()
        server.wait(30)


def _wait_until_up(base_url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base_url}/healthz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError("frsync serve did not start")


def write_rows(path: Path, fr_ids: range) -> Path:
    path.write_text(HEADER + "".join(f"{i},true,BILL-{i},null,\n" for i in fr_ids))
    return path


def run_pushers(workdir: Path, base_url: str, token: str, files: list[Path]) -> list[Any]:
    """Start one `frsync push` per file at once; wait for all; return (exit code, report)."""
    processes = []
    for path in files:
        command = [*FRSYNC, "push", str(path), "--token", token, "--base-url", base_url,
                   "--report", str(path.with_suffix(".report.json"))]  # fmt: skip
        processes.append(subprocess.Popen(command, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL))  # fmt: skip
    codes = [process.wait() for process in processes]
    reports = [json.loads(path.with_suffix(".report.json").read_text()) for path in files]
    return list(zip(codes, reports, strict=True))


def applied_at(base_url: str, token: str, wanted: set[int]) -> dict[int, datetime]:
    """When the server applied each wanted row (rows it did not apply are missing)."""
    applied: dict[int, datetime] = {}
    with Client(token, base_url=base_url) as client:
        for fr in client.iter_fulfillment_requests(accounting_synced=True):
            right_value = fr.external_accounting_id == f"BILL-{fr.id}"
            if fr.id in wanted and right_value and fr.accounting_synced_at is not None:
                applied[fr.id] = fr.accounting_synced_at
    return applied


def measure(name: str, base_url: str, token: str, groups: list[range], runs: list[Any]) -> Scenario:
    """Server-side truth: which rows were applied, and when; `groups` are each pusher's FRs."""
    wanted = {fr_id for group in groups for fr_id in group}
    applied = applied_at(base_url, token, wanted)
    start = min(applied.values(), default=None)

    def done_at(group: range) -> float:
        times = [applied[fr_id] for fr_id in group if fr_id in applied]
        return (max(times) - start).total_seconds() if times and start else 0.0

    pushers = [
        f"{report['summary']['rateLimited']} × 429, done at {done_at(group):.1f} s"
        for group, (_, report) in zip(groups, runs, strict=True)
    ]
    return Scenario(
        name=name, rows=len(wanted), rows_applied=len(applied),
        rate_limited=sum(report["summary"]["rateLimited"] for _, report in runs),
        retries=sum(report["summary"]["retries"] for _, report in runs),
        seconds=max(done_at(group) for group in groups), exit_codes=[code for code, _ in runs],
        pushers="; ".join(pushers),
    )  # fmt: skip


def markdown(results: list[Scenario]) -> str:
    lines = [
        f"Default bucket ({BURST} deep, {RATE:g}/s); allowed = {BURST} + {RATE:g}·t requests "
        "t seconds after the first row; times are the server's.",
        "",
        "| scenario | rows applied | seconds | allowed by then | achieved / allowed "
        "| 429s met | retries | exit codes | each pusher |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s in results:
        lines.append(
            f"| {s.name} | {s.rows_applied} / {s.rows} | {s.seconds:.1f} | {s.allowed:.1f} "
            f"| {s.efficiency:.1%} | {s.rate_limited} | {s.retries} "
            f"| {', '.join(map(str, s.exit_codes))} | {s.pushers} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200)
    rows = parser.parse_args().rows
    with tempfile.TemporaryDirectory() as scratch, frsync_serve(Path(scratch), rows) as url:
        workdir = Path(scratch)
        solo_ids = range(1, rows + 1)
        solo = run_pushers(workdir, url, SOLO_TOKEN, [write_rows(workdir / "solo.csv", solo_ids)])
        shared_ids = range(100_001, 100_001 + rows)
        halves = [shared_ids[: rows // 2], shared_ids[rows // 2 :]]
        files = [write_rows(workdir / f"shared{n}.csv", ids) for n, ids in enumerate(halves)]
        shared = run_pushers(workdir, url, SHARED_TOKEN, files)
        results = [
            measure("one pusher, its own token", url, SOLO_TOKEN, [solo_ids], solo),
            measure("two pushers, one token", url, SHARED_TOKEN, halves, shared),
        ]
    print(markdown(results))


if __name__ == "__main__":
    main()
