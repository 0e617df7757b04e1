"""How concurrent callers of one token share its bucket: 8 threads on one `Client`, 8 tasks on
one `AsyncClient`, and two clients (one of each, 4 callers apiece) of one token in one process.

Each caller sends `GET /fulfillment-requests/{id}` one after another until the time is up.
Reported per scenario: requests admitted, 429s met, and the share of the most the bucket
allows — `burst + rate · t`, t seconds from the first request sent to the last — which the
client promises to keep at or above 97 % with no 429 at all.

Starts a real `frsync serve` (default bucket: 40 deep, 2 per second) on a scratch SQLite
database, as bench/push_rate.py does:

    python -m bench.client_pacing [--seconds 30]    # prints a markdown table (about 2 minutes)

tests/client/test_pacing.py runs the same scenarios on a faster bucket.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from frsync.client import AsyncClient, Client

__all__ = ["Run", "markdown", "tasks", "threads", "two_clients"]


@dataclass
class Run:
    """What the callers of one scenario sent: the times of the requests, and the 429s."""

    name: str
    burst: int
    rate: float
    fr_id: int = 1  # what the callers read (the bench fixture's account 1 has FR 1)
    sent: list[float] = field(default_factory=list)
    rate_limited: int = 0

    @property
    def admitted(self) -> int:
        return len(self.sent) - self.rate_limited

    @property
    def allowed(self) -> float:
        return self.burst + self.rate * (max(self.sent) - min(self.sent))

    @property
    def share(self) -> float:
        return self.admitted / self.allowed


class _Recorder(httpx.HTTPTransport):
    def __init__(self, sent: list[float]) -> None:
        super().__init__()
        self._sent = sent

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self._sent.append(time.monotonic())
        return super().handle_request(request)


class _AsyncRecorder(httpx.AsyncHTTPTransport):
    def __init__(self, sent: list[float]) -> None:
        super().__init__()
        self._sent = sent

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self._sent.append(time.monotonic())
        return await super().handle_async_request(request)


def _thread_callers(
    client: Client, run: Run, callers: int, deadline: float
) -> list[threading.Thread]:
    def call() -> None:
        while time.monotonic() < deadline:
            client.get_fulfillment_request(run.fr_id)

    return [threading.Thread(target=call) for _ in range(callers)]


async def _task_callers(client: AsyncClient, run: Run, callers: int, deadline: float) -> None:
    async def call() -> None:
        while time.monotonic() < deadline:
            await client.get_fulfillment_request(run.fr_id)

    await asyncio.gather(*(call() for _ in range(callers)))


def threads(base_url: str, token: str, run: Run, callers: int, seconds: float) -> Run:
    """`callers` threads sharing one `Client`."""
    with Client(token, base_url=base_url, transport=_Recorder(run.sent)) as client:
        workers = _thread_callers(client, run, callers, time.monotonic() + seconds)
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        run.rate_limited += client.stats.rate_limited
    return run


def tasks(base_url: str, token: str, run: Run, callers: int, seconds: float) -> Run:
    """`callers` tasks sharing one `AsyncClient`."""

    async def main() -> None:
        transport = _AsyncRecorder(run.sent)
        async with AsyncClient(token, base_url=base_url, transport=transport) as client:
            await _task_callers(client, run, callers, time.monotonic() + seconds)
            run.rate_limited += client.stats.rate_limited

    asyncio.run(main())
    return run


def two_clients(base_url: str, token: str, run: Run, callers: int, seconds: float) -> Run:
    """A `Client` in `callers` threads and an `AsyncClient` in `callers` tasks, one token."""
    deadline = time.monotonic() + seconds
    with Client(token, base_url=base_url, transport=_Recorder(run.sent)) as client:
        workers = _thread_callers(client, run, callers, deadline)
        for worker in workers:
            worker.start()
        tasks_run = Run(run.name, run.burst, run.rate, run.fr_id, sent=run.sent)
        tasks(base_url, token, tasks_run, callers, deadline - time.monotonic())
        for worker in workers:
            worker.join()
        run.rate_limited += client.stats.rate_limited + tasks_run.rate_limited
    return run


Scenario = Callable[[str, str, Run, int, float], Run]
SCENARIOS: dict[str, tuple[Scenario, int]] = {
    "8 threads, one Client": (threads, 8),
    "8 tasks, one AsyncClient": (tasks, 8),
    "two clients, one token (4 threads + 4 tasks)": (two_clients, 4),
}


def markdown(runs: list[Run], seconds: float) -> str:
    lines = [
        f"Bucket {runs[0].burst} @ {runs[0].rate:g}/s, {seconds:g} s per scenario; allowed ="
        " burst + rate · t from the first request sent to the last.",
        "",
        "| scenario | admitted | 429s | allowed | share of allowed |",
        "|---|---:|---:|---:|---:|",
    ]
    for run in runs:
        lines.append(
            f"| {run.name} | {run.admitted} | {run.rate_limited} | {run.allowed:.0f}"
            f" | {run.share:.1%} |"
        )
    return "\n".join(lines)


def main() -> None:
    from bench.push_rate import BURST, RATE, SOLO_TOKEN, frsync_serve

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    runs = []
    for name, (scenario, callers) in SCENARIOS.items():
        # A fresh server per scenario: each starts on a full bucket.
        with tempfile.TemporaryDirectory() as workdir, frsync_serve(Path(workdir), 10) as url:
            runs.append(scenario(url, SOLO_TOKEN, Run(name, BURST, RATE), callers, args.seconds))
    print(markdown(runs, args.seconds))


if __name__ == "__main__":
    main()
