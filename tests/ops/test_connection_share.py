"""The connection bounds of `server_protocol.py` one by one, on an in-process uvicorn with
the guarded protocol: one address's share, idle keep-alive connections closed first near the
cap, and proxies in `forwarded_allow_ips` exempt from the share."""

from __future__ import annotations

import asyncio
from pathlib import Path

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from frsync.server_protocol import trusted_networks
from tests.ops.conftest import guarded_server
from tests.support import make_settings

OTHER = "127.0.0.2"  # a second loopback address


async def _open(
    port: int, source: str = "127.0.0.1"
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))


async def _closed_by_server(reader: asyncio.StreamReader, within: float = 5.0) -> bool:
    """Whether the server closes the connection within `within` s (bytes still in flight
    from an earlier answer are read past)."""
    try:
        async with asyncio.timeout(within):
            while await reader.read(4096):
                pass
    except TimeoutError:
        return False
    except ConnectionError:
        return True
    return True


async def _healthz(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    return await asyncio.wait_for(reader.read(4096), 5)


def test_the_uvicorn_internals_the_share_relies_on_exist() -> None:
    # server_protocol marks a connection idle after uvicorn's on_response_complete armed
    # its keep-alive timer (timeout_keep_alive_task); an upgrade that moves either fails here.
    assert "on_response_complete" in vars(HttpToolsProtocol)
    assert "timeout_keep_alive_task" in HttpToolsProtocol.on_response_complete.__code__.co_names


async def test_an_address_over_its_share_is_refused_and_another_is_served(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, max_connections_per_address=5)
    async with guarded_server(settings) as (_, port):
        held = [await _open(port) for _ in range(5)]
        extra_reader, extra_writer = await _open(port)
        assert await _closed_by_server(extra_reader)  # the sixth from 127.0.0.1
        other = await _open(port, OTHER)
        assert (await _healthz(*other)).startswith(b"HTTP/1.1 200")
        for _, writer in held:  # the share comes back as connections close
            writer.close()
        await asyncio.sleep(0.2)
        again = await _open(port)
        assert (await _healthz(*again)).startswith(b"HTTP/1.1 200")
        for _, writer in [(extra_reader, extra_writer), other, again]:
            writer.close()


async def test_idle_keep_alive_connections_are_closed_first_near_the_cap(tmp_path: Path) -> None:
    # 10 per process; from 9 open, each new connection first closes the longest-idle one.
    settings = make_settings(tmp_path, max_connections=10, max_connections_per_address=100)
    async with guarded_server(settings) as (_, port):
        idle = []
        for _ in range(9):
            connection = await _open(port)
            assert (await _healthz(*connection)).startswith(b"HTTP/1.1 200")
            idle.append(connection)  # answered and kept alive: idle
        newcomers = [await _open(port, OTHER) for _ in range(3)]
        assert await _closed_by_server(idle[0][0])  # the oldest idle ones went
        for reader, writer in newcomers:  # and each newcomer is served
            assert (await _healthz(reader, writer)).startswith(b"HTTP/1.1 200")
        for _, writer in idle + newcomers:
            writer.close()


async def test_a_trusted_proxy_is_exempt_from_the_share(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path, max_connections_per_address=2, forwarded_allow_ips="127.0.0.1"
    )
    async with guarded_server(settings) as (_, port):
        connections = [await _open(port) for _ in range(6)]  # three times the share
        for connection in connections:
            assert (await _healthz(*connection)).startswith(b"HTTP/1.1 200")
        for _, writer in connections:
            writer.close()
    assert trusted_networks("*") is None
    assert trusted_networks("10.0.0.0/8, not-an-ip, ::1") is not None
