"""An open-loop PATCH generator: a fixed offered rate, latency measured from the schedule.

`python -m bench.openloop URL TARGETS --rate 1000 --seconds 15` prints one JSON line.

wrk is closed-loop: when the server stalls it stops sending, so its percentiles hide the
stall (coordinated omission), and wrk2 is not packaged in Debian. Here request n is due at
start + n/rate whatever happened before; a request that waits for a free connection counts
that wait in its latency. Bodies are the wrk script's (1–3 items of the FR, all 204s).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import time
from collections import Counter
from pathlib import Path

import uvloop

CONNECTIONS = 64


def _requests(targets: Path, host: str) -> list[bytes]:
    out = []
    for n, line in enumerate(targets.read_text().splitlines()[::7]):
        token, fr, _, items = line.split()
        lines = ",".join(
            f'{{"id":{i},"externalAccountingItemId":"QB-LINE-{i}-{n}"}}' for i in items.split(",")
        )
        body = (
            f'{{"accountingSynced":true,"externalAccountingId":"QB-INV-{fr}-{n}",'
            f'"accountingError":null,"items":[{lines}]}}'
        ).encode()
        head = (
            f"PATCH /fulfillment-requests/{fr}/accounting-sync HTTP/1.1\r\nHost: {host}\r\n"
            f"X-API-TOKEN: {token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        out.append(head + body)
    return out


async def _read_answer(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            await reader.readexactly(int(line[15:]))
    return status


async def _connection(
    host: str, port: int, queue: asyncio.Queue[tuple[float, bytes]], latencies: list[float],
    statuses: Counter[int],
) -> None:  # fmt: skip
    reader, writer = await asyncio.open_connection(host, port)
    while True:
        due, request = await queue.get()
        writer.write(request)
        statuses[await _read_answer(reader)] += 1
        latencies.append(time.perf_counter() - due)


async def run(url: str, targets: Path, rate: float, seconds: float) -> dict[str, object]:
    host, port = url.removeprefix("http://").split(":")
    requests = _requests(targets, host)
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    workers = [
        asyncio.create_task(_connection(host, int(port), queue, latencies, statuses))
        for _ in range(CONNECTIONS)
    ]
    start, sent, total = time.perf_counter(), 0, int(rate * seconds)
    while sent < total:
        due_now = min(total, int((time.perf_counter() - start) * rate) + 1)
        for n in range(sent, due_now):
            queue.put_nowait((start + n / rate, requests[n % len(requests)]))
        sent = due_now
        await asyncio.sleep(0.0005)
    # Polling, not an Event: the wait is bounded by time, whatever the answers do.
    while len(latencies) < total and time.perf_counter() - start < seconds + 10:  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    for worker in workers:
        worker.cancel()
    return _summary(latencies, statuses, total, time.perf_counter() - start)


def _percentile(ordered: list[float], share: float) -> float:
    return ordered[min(len(ordered) - 1, math.ceil(share * len(ordered)) - 1)] if ordered else 0.0


def _summary(
    latencies: list[float], statuses: Counter[int], offered: int, elapsed: float
) -> dict[str, object]:
    ordered = sorted(latencies)
    return {
        "offered": offered,
        "answered": len(ordered),
        "elapsed_s": elapsed,
        "p50_us": _percentile(ordered, 0.50) * 1e6,
        "p99_us": _percentile(ordered, 0.99) * 1e6,
        "max_us": (ordered[-1] if ordered else 0.0) * 1e6,
        "statuses": {str(k): v for k, v in statuses.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url")
    parser.add_argument("targets", type=Path)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--seconds", type=float, default=15.0)
    args = parser.parse_args()
    result = uvloop.run(run(args.url, args.targets, args.rate, args.seconds))
    print("BENCH_JSON", json.dumps(result))


if __name__ == "__main__":
    main()
