"""The pieces every fault scenario is made of: a database, a real `frsync serve` process,
writers whose every field carries one marker, and the check that nothing was lost or torn.

Shared by the tests in this folder and by `bench/faults_report.py`, so the report's figures
come from the very code the tests run.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from frsync.config import Settings
from frsync.store import migrate
from tests.support import free_port, load_fixture, run_sql

POSTGRES_ADMIN_URL = os.environ.get(
    "FRSYNC_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("FRSYNC_FAULTS_REDIS_URL", "redis://127.0.0.1:6379/10")
FRSYNC = [sys.executable, "-m", "frsync"]
ITEMS_PER_FR = 2


# Data ----------------------------------------------------------------------------------


@dataclass
class Dataset:
    """FRs grouped per account, with items, and account tokens (plaintext) per account."""

    accounts: int
    frs_per_account: int
    tokens_per_account: int = 1
    run: str = field(default_factory=lambda: secrets.token_hex(4))

    def fr_ids(self, account: int) -> list[int]:
        first = 1000 * account + 1
        return list(range(first, first + self.frs_per_account))

    def items(self, fr_id: int) -> list[int]:
        return [fr_id * 10 + j for j in range(ITEMS_PER_FR)]

    def token(self, account: int, n: int = 0) -> str:
        # Random per run: Redis buckets of an earlier run must not leak into this one.
        return f"faults-{self.run}-a{account}-t{n}"

    def fixture(self) -> dict[str, Any]:
        accounts = range(1, self.accounts + 1)
        frs = [
            {"id": fr, "accountId": a, "sourceId": 100 + a, "channelId": None, "orderId": fr,
             "fulfillmentRequestNumber": f"FR-{fr}", "status": "Processed",
             "generatedAt": "2026-11-20T10:00:00.000Z",
             "items": [{"id": i, "sku": f"S{i}", "title": f"Item {i}", "quantity": 1,
                        "cost": 1.5, "orderItemId": i} for i in self.items(fr)]}
            for a in accounts for fr in self.fr_ids(a)
        ]  # fmt: skip
        return {
            "accounts": [{"id": a, "name": f"Account {a}"} for a in accounts],
            "sources": [{"id": 100 + a, "accountId": a, "name": f"Source {a}"} for a in accounts],
            "channels": [],
            "fulfillmentRequests": frs,
            "tokens": [
                {"token": self.token(a, n), "type": "account", "id": a}
                for a in accounts
                for n in range(self.tokens_per_account)
            ],
        }


def prepare_database(url: str, dataset: Dataset) -> None:
    """Migrate `url` and load the dataset into it."""
    migrate(url)
    asyncio.run(load_fixture(Settings(database_url=url), dataset.fixture()))


async def _pg_admin(*statements: str) -> None:
    await run_sql(POSTGRES_ADMIN_URL, *statements)


def postgres_available() -> str | None:
    """None when the PostgreSQL server and backend are there, else why not."""
    try:
        import frsync.store.postgres  # noqa: F401

        asyncio.run(_pg_admin("SELECT 1"))
    except Exception as error:
        return f"{type(error).__name__}: {error}"
    return None


@contextmanager
def postgres_database(prefix: str = "frsync_faults") -> Iterator[str]:
    """A fresh database on the shared server (never the server itself: others use it)."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def via_proxy(url: str, port: int) -> str:
    """`url` with its host and port replaced by the proxy's."""
    parts = urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@127.0.0.1:{port}" if userinfo else f"127.0.0.1:{port}"
    return parts._replace(netloc=netloc).geturl()


def integrity_check(path: Path) -> str:
    """SQLite's own verdict on the file ('ok' when every page and index is sound)."""
    db = sqlite3.connect(path)
    try:
        return str(db.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        db.close()


# The server process --------------------------------------------------------------------


class ServerProcess:
    """`python -m frsync serve` in its own process group, logging to a file (a pipe that
    nobody reads would fill up and stall the server)."""

    def __init__(self, workdir: Path, env: dict[str, str], *args: str, workers: int = 2):
        self.workdir = workdir
        self.env = {**os.environ, "FRSYNC_LOG_REQUESTS": "false", **env}
        self.args = ["--workers", str(workers), *args]
        self.workers = workers
        self.log = workdir / "serve.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.base = ""

    def start(self, timeout: float = 60) -> float:
        """Start and wait until every worker has started and `/readyz` answers 200; returns
        the seconds that took. One worker answering is not enough: on a loaded machine the
        next may start seconds later, and a fault injected meanwhile fails its startup."""
        self.port = port = free_port()
        self.base = f"http://127.0.0.1:{port}"
        started = time.monotonic()
        log_from = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as sink:
            self.process = subprocess.Popen(
                [*FRSYNC, "serve", "--port", str(port), *self.args],
                env=self.env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        with httpx.Client(timeout=2) as client:
            while time.monotonic() - started < timeout:
                if self.process.poll() is not None:
                    raise RuntimeError(f"frsync serve exited: {self.log.read_text()[-2000:]}")
                try:
                    if self._workers_started(log_from) and (
                        client.get(f"{self.base}/readyz").status_code == 200
                    ):
                        return time.monotonic() - started
                except httpx.TransportError:
                    pass
                time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"frsync serve not ready in {timeout} s: {self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        """SIGKILL the whole process group: the server and every worker, at once."""
        if self.process is None:
            return
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)
        self.process = None

    def stop(self) -> int:
        """SIGTERM, wait for the graceful exit; SIGKILL the group if it does not come."""
        if self.process is None:
            return 0
        process, self.process = self.process, None
        process.terminate()
        try:
            return process.wait(30)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
            return -9

    def pids(self) -> list[int]:
        """The server process and its workers (not multiprocessing's resource tracker)."""
        if self.process is None:
            return []
        main = self.process.pid
        return [main, *(pid for pid in children(main) if b"resource_tracker" not in cmdline(pid))]

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def _workers_started(self, log_from: int) -> bool:
        with self.log.open("rb") as log:
            log.seek(log_from)
            return log.read().count(b"Application startup complete.") >= self.workers


def children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return sorted(found)


def cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def rss_and_fds(pid: int, serving_port: int) -> tuple[float, int, int] | None:
    """Resident memory (MiB), open file descriptors other than the clients' connections to
    `serving_port`, and how many of those connections `pid` holds; None once it is gone.

    The two counts are apart because a load generator's keep-alive connections come and go
    with its load, not with a leak: counted in, a burst that opens twenty more reads as
    twenty leaked descriptors. A server that never closes its clients' connections shows in
    the second count, which must fall to nothing once the clients have gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        inbound = _inbound_sockets(pid, serving_port)
        links = [_readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
        links = [link for link in links if link]
    except OSError:
        return None
    clients = sum(1 for link in links if link in inbound)
    kib = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS"))
    return kib / 1024, len(links) - clients, clients


_LISTEN = "0A"  # the state column of /proc/net/tcp


def _inbound_sockets(pid: int, port: int) -> set[str]:
    """`socket:[inode]` of every connection (not the listener) whose local port is `port`,
    as /proc/<pid>/fd links name them, from the process's own network namespace."""
    found = set()
    for table in ("tcp", "tcp6"):
        with open(f"/proc/{pid}/net/{table}") as rows:
            next(rows)  # the header
            for row in rows:
                fields = row.split()
                local_port = int(fields[1].rsplit(":", 1)[1], 16)
                if local_port == port and fields[3] != _LISTEN:
                    found.add(f"socket:[{fields[9]}]")
    return found


def _readlink(path: str) -> str:
    try:
        return os.readlink(path)
    except OSError:  # closed between listing and reading: not open any more
        return ""


# Marker writers and the check ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Attempt:
    fr: int
    marker: str
    status: int | None  # None: no answer (connection refused or cut, timeout)
    request_id: str | None
    retry_after: str | None
    started: float  # monotonic
    seconds: float


def marker_body(marker: str, items: list[int]) -> dict[str, Any]:
    """Every accounting field of the FR carries the marker, so a mix of two is visible."""
    return {
        "externalAccountingId": marker,
        "accountingError": marker,
        "items": [{"id": i, "externalAccountingItemId": marker} for i in items],
    }


class MarkerWriters:
    """`threads` clients PATCHing random FRs of `frs` with fresh markers until stopped
    (`own_fr`: client n PATCHes `frs[n]` alone, so no client waits for another's row lock)."""

    def __init__(self, base: str, token: str, frs: list[int], dataset: Dataset, *,
                 threads: int = 4, timeout: float = 30.0, label: str = "w",
                 own_fr: bool = False) -> None:  # fmt: skip
        if own_fr and threads > len(frs):
            raise ValueError(f"{threads} clients with an FR of their own need {threads} FRs")
        self.base, self.token, self.frs, self.dataset = base, token, frs, dataset
        self.timeout, self.label, self.own_fr = timeout, label, own_fr
        self.attempts: list[Attempt] = []
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._run, args=(n,), daemon=True) for n in range(threads)
        ]

    def __enter__(self) -> MarkerWriters:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self.stopping.set()
        for thread in self._threads:
            thread.join(self.timeout + 5)

    def successes_after(self, moment: float) -> list[Attempt]:
        with self._lock:
            return [a for a in self.attempts if a.status == 204 and a.started >= moment]

    def _run(self, n: int) -> None:
        rng = secrets.SystemRandom()
        headers = {"X-API-TOKEN": self.token}
        seq = 0
        with httpx.Client(base_url=self.base, headers=headers, timeout=self.timeout) as client:
            while not self.stopping.is_set():
                seq += 1
                fr = self.frs[n] if self.own_fr else rng.choice(self.frs)
                marker = f"{self.label}{n}-{seq}"
                body = marker_body(marker, self.dataset.items(fr))
                started = time.monotonic()
                status: int | None
                try:
                    answer = client.patch(f"/fulfillment-requests/{fr}/accounting-sync", json=body)
                    status, request_id = answer.status_code, answer.headers.get("x-request-id")
                    retry_after = answer.headers.get("retry-after")
                except httpx.TransportError:
                    status = request_id = retry_after = None
                    time.sleep(0.02)  # a dead server refuses at once: do not spin
                attempt = Attempt(fr, marker, status, request_id, retry_after, started,
                                  time.monotonic() - started)  # fmt: skip
                with self._lock:
                    self.attempts.append(attempt)


@dataclass
class Verdict:
    """What the store holds, checked against what the clients were told."""

    frs_checked: int = 0
    torn: int = 0  # FRs whose fields carry more than one marker
    unknown: int = 0  # FRs holding a marker no client sent
    acknowledged: int = 0  # 204s
    missing: int = 0  # 204s without their history entry, or whose entry shows another value
    stale: int = 0  # FRs whose state is not their newest history entry's

    @property
    def ok(self) -> bool:
        return not (self.torn or self.unknown or self.missing or self.stale)


def verify(base: str, token: str, dataset: Dataset, frs: list[int],
           attempts: list[Attempt]) -> Verdict:  # fmt: skip
    """Every FR wholly one marker, and every 204 still there.

    With concurrent writers "still there" cannot mean "is the current value": a later 204 on
    the same FR legitimately replaces it. It means: the FR's history holds an entry with the
    204's request id whose `after` is that request's marker, and the FR's state is its newest
    entry's. So an acknowledged write was either kept or superseded by a later one, in order.
    """
    verdict = Verdict(frs_checked=len(frs))
    sent: dict[int, set[str]] = {}
    for attempt in attempts:
        sent.setdefault(attempt.fr, set()).add(attempt.marker)
    acked = [a for a in attempts if a.status == 204]
    verdict.acknowledged = len(acked)
    entries: dict[str, dict[str, Any]] = {}
    with httpx.Client(base_url=base, headers={"X-API-TOKEN": token}, timeout=30) as client:
        for fr in frs:
            state = client.get(f"/fulfillment-requests/{fr}").raise_for_status().json()
            newest_first = _whole_history(client, fr)
            values = {state["externalAccountingId"], state["accountingError"]}
            values |= {i["externalAccountingItemId"] for i in state["fulfillmentRequestItems"]}
            if len(values) > 1:
                verdict.torn += 1
            current = values.pop() if len(values) == 1 else None
            if current is not None and current not in sent.get(fr, set()):
                verdict.unknown += 1
            if newest_first and _after(newest_first[0]) != current:
                verdict.stale += 1
            entries |= {entry["requestId"]: entry for entry in newest_first}
    for attempt in acked:
        entry = entries.get(attempt.request_id or "")
        if entry is None or _after(entry) != attempt.marker:
            verdict.missing += 1
    return verdict


def _after(entry: dict[str, Any]) -> Any:
    change = entry["changes"].get("externalAccountingId")
    return None if change is None else change["after"]


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0…1) by nearest rank; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]


def _whole_history(client: httpx.Client, fr: int) -> list[dict[str, Any]]:
    """Every history entry of `fr`, newest first, read a page (of 100) at a time."""
    entries: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 100}
    while True:
        answer = client.get(f"/fulfillment-requests/{fr}/accounting-sync/history", params=params)
        page = answer.raise_for_status().json()
        entries += page
        if len(page) < params["limit"]:
            return entries
        params["beforeId"] = page[-1]["id"]
