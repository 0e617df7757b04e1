"""Slow clients: hundreds of connections trickling request heads or bodies (slowloris) while
a probe sends one valid PATCH a second on a fresh connection.

A real `python -m frsync serve` (2 workers, SQLite) runs with `FRSYNC_HEADER_TIMEOUT` and
`FRSYNC_REQUEST_READ_TIMEOUT` set to `HEADER_TIMEOUT` and `READ_TIMEOUT`. Two kinds of
slow connection, `slots` of each held open at all times for `seconds` (a closed one is
replaced at once, as an attacker would):

- head: a request head sent one byte every `TRICKLE_EVERY` s; it never completes. Bound:
  `HEADER_TIMEOUT` after the connection opens (server_protocol's head deadline, answered 408).
- body: a complete PATCH head, then the body one byte every `TRICKLE_EVERY` s. Bound:
  `READ_TIMEOUT` + 1 s after the head (the app answers 408 at `READ_TIMEOUT`;
  server_protocol hangs up one second later if that answer could not go out).

Time-to-close is measured from the moment the head was opened (head) or sent (body) to the
moment the server's answer or hang-up reached us; a connection the server has not closed by
its bound + `GIVE_UP` is closed by us and counted as not closed. Pass: every probe answered
204, no 5xx anywhere, every slow connection closed by the server within its bound +
`TOLERANCE` (the scheduling slack of a shared two-core machine, and our own polling).

At most 2 × `slots` slow sockets (+ one probe) are open at once, and each is closed in a
`finally`.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.faults.harness import Dataset, ServerProcess, marker_body, prepare_database
from tests.faults.raw_http import Answer, close_quietly, read_answer, read_some, request_head

HEADER_TIMEOUT = 2.0
READ_TIMEOUT = 2.0
BODY_SLACK = 1.0  # server_protocol._BODY_SLACK: the hang-up after the app's own 408
BOUNDS = {"head": HEADER_TIMEOUT, "body": READ_TIMEOUT + BODY_SLACK}
TOLERANCE = 1.0
GIVE_UP = 5.0
TRICKLE_EVERY = 0.25
PROBE_EVERY = 1.0
PROBE_TIMEOUT = 5.0
WORKERS = 2
BODY_LENGTH = 1000  # declared Content-Length of a trickled body: never reached in time


@dataclass
class SlowClientsResult:
    slots: int  # slow connections of each kind held open at once
    seconds: float  # how long they were held
    lifetimes: dict[str, list[float]] = field(default_factory=lambda: {"head": [], "body": []})
    answers: Counter[str] = field(default_factory=Counter)  # "head 408", "body closed", …
    not_closed: Counter[str] = field(default_factory=Counter)  # we gave up before the server
    connect_failures: int = 0  # refused or timed out opening a slow connection
    probe_statuses: Counter[str] = field(default_factory=Counter)
    probe_latencies: list[float] = field(default_factory=list)
    tracebacks: int = 0

    @property
    def probe_attempts(self) -> int:
        return sum(self.probe_statuses.values())

    @property
    def probe_successes(self) -> int:
        return self.probe_statuses["204"]

    @property
    def closed(self) -> int:
        return sum(len(v) for v in self.lifetimes.values())

    @property
    def server_errors(self) -> int:
        """5xx answers, to the slow connections or to the probe."""
        slow = sum(n for k, n in self.answers.items() if k.split()[1].startswith("5"))
        return slow + sum(n for k, n in self.probe_statuses.items() if k.startswith("5"))

    def over_bound(self, kind: str) -> int:
        return sum(1 for s in self.lifetimes[kind] if s > BOUNDS[kind] + TOLERANCE)

    def spread(self, kind: str) -> tuple[float, float, float]:
        """Time-to-close (min, median, max) of one kind, seconds."""
        values = self.lifetimes[kind] or [0.0]
        return min(values), statistics.median(values), max(values)

    @property
    def ok(self) -> bool:
        return (
            self.probe_attempts > 0
            and self.probe_successes == self.probe_attempts
            and self.server_errors == 0
            and not self.not_closed
            and all(self.lifetimes[k] and self.over_bound(k) == 0 for k in BOUNDS)
            and self.tracebacks == 0
        )


class _Load:
    def __init__(self, port: int, base: str, dataset: Dataset, result: SlowClientsResult):
        self.port, self.base, self.dataset, self.result = port, base, dataset, result
        token = dataset.token(1, 0)
        fr = dataset.fr_ids(1)[0]
        self.body_head = request_head("PATCH", f"/fulfillment-requests/{fr}/accounting-sync", {
            "X-API-TOKEN": token, "Content-Type": "application/json",
            "Content-Length": str(BODY_LENGTH)})  # fmt: skip
        # Never ends (no blank line), and long enough to outlast any bound at this pace.
        self.partial_head = (b"GET /fulfillment-requests/" + str(fr).encode() + b" HTTP/1.1\r\n"
                             b"Host: frsync.test\r\nX-Padding: " + b"a" * 400)  # fmt: skip

    async def run(self) -> None:
        result = self.result
        started = time.monotonic()
        until = started + result.seconds
        slots = [self._slot(kind, until) for kind in BOUNDS for _ in range(result.slots)]
        # The probe outlasts the slots' last connections, so it also sees their closing.
        probe_until = until + max(BOUNDS.values()) + TOLERANCE
        await asyncio.gather(self._probe(started, probe_until), *slots)

    async def _slot(self, kind: str, until: float) -> None:
        # Spread the first connections over one bound, so the slots do not open, and get
        # closed, in lockstep waves.
        await asyncio.sleep(random.uniform(0, BOUNDS[kind]))
        while time.monotonic() < until:
            await self._one(kind)

    async def _one(self, kind: str) -> None:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", self.port), 5
            )
        except (OSError, TimeoutError):
            self.result.connect_failures += 1
            await asyncio.sleep(0.1)
            return
        opened = time.monotonic()
        try:
            if kind == "body":
                writer.write(self.body_head)
                await writer.drain()
                payload = b'{"externalAccountingId":"' + b"x" * BODY_LENGTH
            else:
                payload = self.partial_head
            give_up = opened + BOUNDS[kind] + GIVE_UP
            for byte in payload:
                if time.monotonic() > give_up:
                    break
                writer.write(bytes([byte]))
                await writer.drain()
                first = await read_some(reader, TRICKLE_EVERY)
                if first is None:
                    continue  # nothing from the server yet: trickle on
                # An answer (408) or a hang-up. Closed is what counts: read on to the EOF.
                answer = await read_answer(reader, first, max(0.0, give_up - time.monotonic()))
                if answer.closed:
                    self._closed(kind, time.monotonic() - opened, answer)
                    return
                break
            self.result.not_closed[kind] += 1
        except ConnectionError:
            self._closed(kind, time.monotonic() - opened, Answer(None, reset=True, closed=True))
        finally:
            await close_quietly(writer)

    def _closed(self, kind: str, lifetime: float, answer: Answer) -> None:
        self.result.lifetimes[kind].append(lifetime)
        how = str(answer.status) if answer.status else "reset" if answer.reset else "closed"
        self.result.answers[f"{kind} {how}"] += 1

    async def _probe(self, started: float, until: float) -> None:
        """One valid PATCH a second, each on a new connection: a new client must get in."""
        fr = self.dataset.fr_ids(1)[1]
        items = self.dataset.items(fr)
        headers = {"X-API-TOKEN": self.dataset.token(1, 1)}
        limits = httpx.Limits(max_keepalive_connections=0)
        async with httpx.AsyncClient(base_url=self.base, headers=headers, limits=limits,
                                     timeout=PROBE_TIMEOUT) as client:  # fmt: skip
            n = 0
            while (at := started + n * PROBE_EVERY) < until:
                await asyncio.sleep(max(0.0, at - time.monotonic()))
                sent = time.monotonic()
                try:
                    answer = await client.patch(f"/fulfillment-requests/{fr}/accounting-sync",
                                                json=marker_body(f"probe-{n}", items))  # fmt: skip
                    status = str(answer.status_code)
                except httpx.TransportError:
                    status = "no answer"
                self.result.probe_latencies.append(time.monotonic() - sent)
                self.result.probe_statuses[status] += 1
                n += 1


def run_slow_clients(workdir: Path, slots: int, seconds: float) -> SlowClientsResult:
    """`slots` trickling-head and `slots` trickling-body connections held for `seconds`
    against a real server, with a probe; see the module docstring."""
    dataset = Dataset(accounts=1, frs_per_account=2, tokens_per_account=2)
    url = f"sqlite:///{workdir / 'slow-clients.db'}"
    prepare_database(url, dataset)
    # Every slow client is 127.0.0.1: lift the per-address share, which would otherwise close
    # them before their deadlines (the share has its own scenario, flood.py).
    env = {"FRSYNC_DATABASE_URL": url, "FRSYNC_HEADER_TIMEOUT": str(HEADER_TIMEOUT),
           "FRSYNC_REQUEST_READ_TIMEOUT": str(READ_TIMEOUT),
           "FRSYNC_MAX_CONNECTIONS_PER_ADDRESS": "100000"}  # fmt: skip
    # A bucket that never empties: this scenario is about connections, not the limiter.
    server = ServerProcess(workdir, env, "--burst", "1000000", "--rate", "1000000",
                           workers=WORKERS)  # fmt: skip
    result = SlowClientsResult(slots, seconds)
    server.start()
    try:
        port = int(server.base.rsplit(":", 1)[1])
        asyncio.run(_Load(port, server.base, dataset, result).run())
    finally:
        server.stop()
    result.tracebacks = server.log_text().count("Traceback")
    return result
