"""Request line plus headers are bounded at 64 KiB per request (SPEC §5), before they are
buffered: past it, a 431 in the problem shape and the connection closed; a head of any size
can no longer make a process hold more than the bound per connection."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import msgspec

from frsync.server_protocol import MAX_HEAD_BYTES
from tests.faults.raw_http import Answer, close_quietly, read_answer
from tests.ops.conftest import env_for, guarded_server, load_with_cli, serve
from tests.support import BASIC_FIXTURE, TOKENS, make_settings


def _head(path: str, size: int, *, end: bool = True) -> bytes:
    """A GET whose request line plus headers is exactly `size` bytes (with `end`, the blank
    line that closes the head included)."""
    start = (f"GET {path} HTTP/1.1\r\nHost: x\r\nX-API-TOKEN: {TOKENS['account1']}\r\n"
             "X-Padding: ").encode()  # fmt: skip
    tail = b"\r\n\r\n" if end else b""
    return start + b"a" * (size - len(start) - len(tail)) + tail


async def _exchange(host: str, port: int, data: bytes) -> Answer:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(data)
        await writer.drain()
        return await read_answer(reader, b"", 5)
    finally:
        await close_quietly(writer)


async def test_a_head_over_64_kib_is_refused_431_and_closed(tmp_path: Path) -> None:
    async with guarded_server(make_settings(tmp_path)) as (host, port):
        at_bound = await _exchange(host, port, _head("/fulfillment-requests/221", MAX_HEAD_BYTES))
        over = await _exchange(host, port, _head("/fulfillment-requests/221", MAX_HEAD_BYTES + 1))
        # Never ended: the head grows past the bound without a blank line.
        unended = await _exchange(host, port, _head("/healthz", MAX_HEAD_BYTES + 1, end=False))
    assert at_bound.status == 200, at_bound
    for answer in (over, unended):
        assert answer.status == 431, answer
        assert answer.headers["content-type"] == "application/problem+json"
        problem = msgspec.json.decode(answer.body)
        assert problem["status"] == 431 and problem["message"] == problem["detail"]
        assert answer.closed


async def test_the_bound_is_per_request_on_a_kept_alive_connection(tmp_path: Path) -> None:
    """Two heads of 40 KiB pipelined on one connection: each is within the bound."""
    first = _head("/fulfillment-requests/221", 40 * 1024)
    second = _head("/fulfillment-requests/222", 40 * 1024).replace(b"Host: x", b"Host: y")
    second = second.replace(b"X-Padding", b"Connection: close\r\nX-Padding", 1)[: len(second)]
    second = second[:-4] + b"\r\n\r\n"
    async with guarded_server(make_settings(tmp_path)) as (host, port):
        answer = await _exchange(host, port, first + second)
    assert answer.status == 200, answer
    assert answer.body.count(b"HTTP/1.1 200 ") == 1  # the second answer follows the first


def _rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    kib = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS"))
    return kib / 1024


async def _stream_header(port: int, megabytes: int) -> bool:
    """Send a header line of `megabytes` MiB; True when the server cut us off early."""
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    chunk = b"a" * 65536
    cut_off = False
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ")
        for _ in range(megabytes * 16):
            writer.write(chunk)
            await writer.drain()
    except ConnectionError:
        cut_off = True
    finally:
        await close_quietly(writer)
    return cut_off


async def test_huge_headers_do_not_grow_the_process(tmp_path: Path) -> None:
    """The outside probe's attack: unauthenticated 200 MB header lines took a worker from
    223 MB to 1.24 GB. Here 20 connections each try to send 64 MiB of header at once."""
    await asyncio.to_thread(load_with_cli, env_for(tmp_path), tmp_path, BASIC_FIXTURE)
    with serve(tmp_path) as server:
        before = _rss_mib(server.process.pid)
        started = time.monotonic()
        results = await asyncio.gather(*(_stream_header(server.port, 64) for _ in range(20)))
        elapsed = time.monotonic() - started
        after = _rss_mib(server.process.pid)
    print(f"RSS {before:.1f} -> {after:.1f} MiB; cut off in {elapsed:.2f} s")  # pytest -s
    assert all(results)
    # Cut off at the bound, not by the header timeout (10 s) after megabytes were buffered.
    assert elapsed < 7, elapsed  # the header timeout would be 10 s
    assert after - before < 16, (before, after)
