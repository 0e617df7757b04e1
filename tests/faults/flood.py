"""One client address floods the server with connections; another address's requests must
keep being answered (SPEC §5, issue 23 item 1).

The flood runs in its own process (so its work does not delay the probe's clock), from
127.0.0.1: `connections` sockets, each either

- `slow`: a request head trickled one header line a second, never finished, or
- `idle`: one complete request answered, then the connection left open (keep-alive),

and each one the server closes is reopened after `REOPEN_AFTER` s, as an attacker would. The
probe binds its sockets to 127.0.0.2 (another loopback address) and sends `GET /healthz` and
an authenticated `GET /fulfillment-requests/{id}` in turn, each on a fresh connection,
every `PROBE_EVERY` s. Everything is bounded: the flood holds at most `connections` sockets
and stops at `seconds`; each probe gives up after `PROBE_TIMEOUT` s.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

FLOOD_ADDRESS, PROBE_ADDRESS = "127.0.0.1", "127.0.0.2"
REOPEN_AFTER = 1.0  # seconds between the server closing a flood socket and its reopening
LINE_EVERY = 1.0  # seconds between two header lines of a slow head
PROBE_EVERY = 0.1
PROBE_TIMEOUT = 5.0
RAMP_SECONDS = 3.0  # the flood opens its sockets over this long, then the probe starts


@dataclass
class FloodResult:
    mode: str
    connections: int
    seconds: float
    opened: int = 0  # connections the flood opened (reopens included)
    latencies: list[float] = field(default_factory=list)  # answered probes, seconds
    failures: list[str] = field(default_factory=list)  # probes not answered 200

    @property
    def attempts(self) -> int:
        return len(self.latencies) + len(self.failures)

    def percentile(self, share: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))]

    def summary(self) -> str:
        answered = len(self.latencies)
        median = statistics.median(self.latencies) if self.latencies else float("nan")
        return (
            f"{self.mode}: {self.connections} connections from {FLOOD_ADDRESS} for "
            f"{self.seconds:g} s ({self.opened} opened); probes from {PROBE_ADDRESS} answered "
            f"{answered} of {self.attempts}, p50 {median * 1000:.1f} ms, p99 "
            f"{self.percentile(0.99) * 1000:.1f} ms, max {max(self.latencies, default=0) * 1000:.1f}"
            " ms"
        )


async def _slow(host: str, port: int, stop: float) -> int:
    """One trickling head, reopened whenever the server closes it; connections opened."""
    opened = 0
    while time.monotonic() < stop:
        with contextlib.suppress(OSError):
            reader, writer = await asyncio.open_connection(
                host, port, local_addr=(FLOOD_ADDRESS, 0)
            )
            opened += 1
            try:
                writer.write(b"GET /healthz HTTP/1.1\r\nHost: flood\r\n")
                n = 0
                while time.monotonic() < stop:
                    try:
                        await asyncio.wait_for(reader.read(4096), LINE_EVERY)
                    except TimeoutError:
                        n += 1
                        writer.write(f"X-Line-{n}: slow\r\n".encode())
                        await writer.drain()
                        continue
                    break  # the server closed it, or answered (a 408) and is closing it
            finally:
                writer.close()
        await asyncio.sleep(REOPEN_AFTER)
    return opened


async def _idle(host: str, port: int, stop: float) -> int:
    """One answered request, then an idle keep-alive connection, reopened when closed."""
    opened = 0
    while time.monotonic() < stop:
        with contextlib.suppress(OSError):
            reader, writer = await asyncio.open_connection(
                host, port, local_addr=(FLOOD_ADDRESS, 0)
            )
            opened += 1
            try:
                writer.write(b"GET /healthz HTTP/1.1\r\nHost: flood\r\n\r\n")
                await writer.drain()
                while time.monotonic() < stop:  # read the answer, then wait for the close
                    with contextlib.suppress(TimeoutError):
                        if not await asyncio.wait_for(reader.read(4096), 1.0):
                            break
            finally:
                writer.close()
        await asyncio.sleep(REOPEN_AFTER)
    return opened


async def _flood(mode: str, port: int, connections: int, seconds: float) -> int:
    stop = time.monotonic() + seconds
    one = _slow if mode == "slow" else _idle

    async def staggered(n: int) -> int:
        await asyncio.sleep(RAMP_SECONDS * n / connections)
        return await one("127.0.0.1", port, stop)

    return sum(await asyncio.gather(*(staggered(n) for n in range(connections))))


def _flood_process(mode: str, port: int, connections: int, seconds: float, out: Any) -> None:
    out.put(asyncio.run(_flood(mode, port, connections, seconds)))


async def _probe(base: str, token: str, fr_id: int, until: float, result: FloodResult) -> None:
    transport = httpx.AsyncHTTPTransport(local_address=PROBE_ADDRESS, retries=0)
    limits = httpx.Limits(max_keepalive_connections=0)  # a fresh connection every time
    async with httpx.AsyncClient(
        transport=transport, limits=limits, timeout=PROBE_TIMEOUT
    ) as client:
        n = 0
        next_at = time.monotonic()
        while next_at < until:
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            path = "/healthz" if n % 2 == 0 else f"/fulfillment-requests/{fr_id}"
            sent = time.monotonic()
            try:
                answer = await client.get(base + path, headers={"X-API-TOKEN": token})
                if answer.status_code == 200:
                    result.latencies.append(time.monotonic() - sent)
                else:
                    result.failures.append(f"{path} {answer.status_code}")
            except httpx.TransportError as error:
                result.failures.append(f"{path} {type(error).__name__}")
            n += 1
            next_at = sent + PROBE_EVERY


def run_flood(
    base: str, token: str, fr_id: int, mode: str, connections: int, seconds: float
) -> FloodResult:
    """The flood for `seconds` (plus its ramp) against `base`, probed meanwhile."""
    port = int(base.rsplit(":", 1)[1])
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    flood = context.Process(
        target=_flood_process, args=(mode, port, connections, seconds + RAMP_SECONDS, out)
    )
    flood.start()
    result = FloodResult(mode, connections, seconds)
    try:
        time.sleep(RAMP_SECONDS)
        asyncio.run(_probe(base, token, fr_id, time.monotonic() + seconds, result))
        result.opened = out.get(timeout=seconds + 60)
    finally:
        flood.join(30)
        if flood.is_alive():
            flood.kill()
            flood.join()
    return result
