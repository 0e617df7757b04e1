"""HTTP/1.1 over a bare socket, for clients that misbehave on purpose: a request head or body
sent a few bytes at a time, which no HTTP client library will do.

Shared by `slow_clients.py` and `shutdown.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Answer:
    """What the server sent back on one connection, parsed just enough to judge it."""

    status: int | None  # None: nothing that looks like a status line arrived
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    reset: bool = False  # the connection was reset (RST)
    closed: bool = False  # the server closed (EOF) or reset the connection: it is gone

    @classmethod
    def parse(cls, raw: bytes, *, reset: bool = False, closed: bool = False) -> Answer:
        head, _, body = raw.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
            return cls(None, body=raw, reset=reset, closed=closed)
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
        return cls(int(parts[1]), headers, body, reset, closed)


def request_head(method: str, path: str, headers: dict[str, str]) -> bytes:
    """The request line and headers, with the blank line that ends them."""
    lines = [f"{method} {path} HTTP/1.1", "Host: frsync.test"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def read_some(reader: asyncio.StreamReader, wait: float) -> bytes | None:
    """Whatever arrives within `wait` seconds: bytes, b"" at EOF, or None if nothing came.

    Cancelling a pending `StreamReader.read` loses no data, so polling like this between the
    bytes a client trickles is safe.
    """
    try:
        return await asyncio.wait_for(reader.read(65536), wait)
    except TimeoutError:
        return None


async def read_answer(reader: asyncio.StreamReader, first: bytes, within: float) -> Answer:
    """Read until the server closes (or `within` s pass), starting from `first` already received
    (b"" if nothing yet).

    A reset after part of the answer still yields that part: the status line is what counts.
    """
    raw = bytearray(first)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    reset = closed = False
    try:
        while (left := deadline - loop.time()) > 0:
            chunk = await read_some(reader, left)
            if chunk is None:  # the timeout: still open
                break
            if not chunk:
                closed = True
                break
            raw += chunk
    except ConnectionError:
        reset = closed = True
    return Answer.parse(bytes(raw), reset=reset, closed=closed)


async def close_quietly(writer: asyncio.StreamWriter) -> None:
    """Close our end; the server may have gone first, which is the point of these tests."""
    writer.close()
    with contextlib.suppress(ConnectionError, TimeoutError):
        await asyncio.wait_for(writer.wait_closed(), 2)
