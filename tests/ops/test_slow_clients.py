"""Slow clients: connections that trickle their request head or body are closed within a
bound, while a well-behaved client keeps being served."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import httpx

from tests.ops.conftest import guarded_server
from tests.support import TOKENS, make_settings

HEADER_TIMEOUT = 2.0
READ_TIMEOUT = 1.0
TRICKLERS = 200


async def _trickle(host: str, port: int, payload: bytes, every: float) -> float:
    """Open a connection and trickle `payload` into it; seconds until the server hung up."""
    reader, writer = await asyncio.open_connection(host, port)
    return await _trickle_on(reader, writer, payload, every)


async def _probe(base: str, until: float) -> list[int]:
    statuses = []
    headers = {"X-API-TOKEN": TOKENS["account1"]}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=5) as client:
        while time.monotonic() < until:
            answer = await client.get("/fulfillment-requests/221")
            statuses.append(answer.status_code)
            await asyncio.sleep(0.5)
    return statuses


async def test_trickling_heads_are_closed_in_time_while_a_probe_succeeds(tmp_path: Path) -> None:
    # Every trickler is 127.0.0.1, like the probe: lift the per-address share (its own test
    # is test_connection_share.py) so the deadline, not the share, closes them.
    settings = make_settings(tmp_path, header_timeout=HEADER_TIMEOUT, burst=1000,
                             max_connections_per_address=TRICKLERS * 2)  # fmt: skip
    head = b"GET /fulfillment-requests/221 HTTP/1.1\r\nHost: x\r\nX-Padding: " + b"a" * 200
    async with guarded_server(settings) as (host, port):
        probe = asyncio.create_task(_probe(f"http://{host}:{port}", time.monotonic() + 4))
        lifetimes = await asyncio.gather(
            *(_trickle(host, port, head, 0.2) for _ in range(TRICKLERS))
        )
        statuses = await probe
    assert statuses and set(statuses) == {200}, statuses
    assert max(lifetimes) < HEADER_TIMEOUT + 1.0, max(lifetimes)
    assert min(lifetimes) > HEADER_TIMEOUT - 0.5, min(lifetimes)


async def test_a_silent_connection_gets_a_408_after_the_header_timeout(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, header_timeout=1.0)
    async with guarded_server(settings) as (host, port):
        reader, writer = await asyncio.open_connection(host, port)
        started = time.monotonic()
        answer = await asyncio.wait_for(reader.read(), 5)
        waited = time.monotonic() - started
        writer.close()
        await writer.wait_closed()
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b"application/problem+json" in answer
    assert 0.9 < waited < 4.5  # never timing out would be wait_for's 5 s


async def test_an_unread_body_that_trickles_is_cut_off(tmp_path: Path) -> None:
    """A GET answered without reading its body: the trickle would hold the socket forever."""
    settings = make_settings(
        tmp_path, header_timeout=HEADER_TIMEOUT, request_read_timeout=READ_TIMEOUT
    )
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n"
    async with guarded_server(settings) as (host, port):
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(head)
        lifetime = await _trickle_on(reader, writer, b"x" * 1000, 0.2)
    assert lifetime < READ_TIMEOUT + 1.0 + 1.0, lifetime


async def test_a_slow_patch_body_is_answered_408(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path, header_timeout=HEADER_TIMEOUT, request_read_timeout=READ_TIMEOUT
    )
    head = (b"PATCH /fulfillment-requests/221/accounting-sync HTTP/1.1\r\nHost: x\r\n"
            b"X-API-TOKEN: " + TOKENS["account1"].encode() + b"\r\n"
            b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")  # fmt: skip
    async with guarded_server(settings) as (host, port):
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(head)
        answer = await asyncio.wait_for(reader.read(4096), 5)
        writer.close()
        await writer.wait_closed()
    assert answer.startswith(b"HTTP/1.1 408 "), answer


async def _trickle_on(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, payload: bytes, every: float
) -> float:
    """Send `payload` a byte every `every` seconds until the server answers or hangs up."""
    started = time.monotonic()
    try:
        for byte in payload:
            writer.write(bytes([byte]))
            await writer.drain()
            try:
                await asyncio.wait_for(reader.read(4096), every)
            except TimeoutError:
                continue
            return time.monotonic() - started  # an answer (408) or EOF: the server is done
        raise AssertionError("the server kept the trickling connection open")
    except ConnectionError:
        return time.monotonic() - started
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
