"""kill -9 mid-write: concurrent marker writers, SIGKILL of every server process at a random
moment, restart, and the check that no FR is torn and no acknowledged write is gone."""

from __future__ import annotations

import secrets
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.faults.harness import (
    Dataset,
    MarkerWriters,
    ServerProcess,
    integrity_check,
    postgres_database,
    prepare_database,
    verify,
)

FRS_PER_ITERATION = 8  # few FRs, many writers: every FR sees concurrent PATCHes
WRITER_THREADS = 6
KILL_WINDOW = (0.3, 1.5)  # seconds of writing before the SIGKILL, chosen at random


@dataclass
class Kill9Result:
    store: str
    iterations: int = 0
    acknowledged: int = 0  # 204s answered before the kills, over all iterations
    unanswered: int = 0  # requests in flight when the process died
    other_statuses: dict[int, int] = field(default_factory=dict)
    torn: int = 0
    unknown: int = 0
    missing: int = 0
    stale: int = 0
    integrity_failures: int = 0  # SQLite only
    restart_seconds: list[float] = field(default_factory=list)
    tracebacks: int = 0

    @property
    def median_restart(self) -> float:
        return statistics.median(self.restart_seconds) if self.restart_seconds else 0.0

    @property
    def ok(self) -> bool:
        lost = self.torn + self.unknown + self.missing + self.stale + self.integrity_failures
        return lost == 0 and self.tracebacks == 0 and not self.other_statuses


@contextmanager
def _database(store: str, workdir: Path) -> Iterator[str]:
    if store == "sqlite":
        yield f"sqlite:///{workdir / 'kill9.db'}"
    else:
        with postgres_database("frsync_faults_kill9") as url:
            yield url


def run_kill9(store: str, iterations: int, workdir: Path) -> Kill9Result:
    """`iterations` rounds of write → SIGKILL → restart → verify on `store` (sqlite|postgres)."""
    dataset = Dataset(accounts=1, frs_per_account=FRS_PER_ITERATION * iterations)
    token = dataset.token(1)
    all_frs = dataset.fr_ids(1)
    result = Kill9Result(store)
    rng = secrets.SystemRandom()
    with _database(store, workdir) as url:
        prepare_database(url, dataset)
        # A bucket that never empties: this scenario is about the store, not the limiter.
        server = ServerProcess(workdir, {"FRSYNC_DATABASE_URL": url},
                               "--burst", "1000000", "--rate", "1000000")  # fmt: skip
        server.start()
        try:
            for n in range(iterations):
                frs = all_frs[n * FRS_PER_ITERATION : (n + 1) * FRS_PER_ITERATION]
                with MarkerWriters(server.base, token, frs, dataset, threads=WRITER_THREADS,
                                   timeout=10, label=f"i{n}w") as writers:  # fmt: skip
                    time.sleep(rng.uniform(*KILL_WINDOW))
                    server.kill()
                if store == "sqlite" and integrity_check(workdir / "kill9.db") != "ok":
                    result.integrity_failures += 1
                result.restart_seconds.append(server.start())
                _tally(result, verify(server.base, token, dataset, frs, writers.attempts),
                       writers)  # fmt: skip
                result.iterations += 1
        finally:
            server.stop()
        result.tracebacks = server.log_text().count("Traceback")
    return result


def _tally(result: Kill9Result, verdict: object, writers: MarkerWriters) -> None:
    from tests.faults.harness import Verdict

    assert isinstance(verdict, Verdict)
    result.acknowledged += verdict.acknowledged
    result.torn += verdict.torn
    result.unknown += verdict.unknown
    result.missing += verdict.missing
    result.stale += verdict.stale
    for attempt in writers.attempts:
        if attempt.status is None:
            result.unanswered += 1
        elif attempt.status != 204:
            result.other_statuses[attempt.status] = result.other_statuses.get(attempt.status, 0) + 1
