"""Calling the app with a hand-made ASGI scope, for requests no HTTP client would send
(a method or path with CR/LF or escape codes, header values with control characters)."""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Message


async def raw_request(
    app: ASGIApp,
    method: str,
    path: str,
    headers: list[tuple[bytes, bytes]],
    body: bytes = b"",
    client: str = "127.0.0.1",
) -> tuple[int, dict[str, str], bytes]:
    """Status, headers (lower-case names, decoded latin-1) and body of one request."""
    scope: dict[str, Any] = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
        "method": method, "scheme": "http", "path": path,
        "raw_path": path.encode("utf-8", "surrogateescape"), "root_path": "",
        "query_string": b"", "headers": headers, "client": (client, 50000),
        "server": ("testserver", 80),
    }  # fmt: skip
    chunks = [body]
    sent: list[Message] = []

    async def receive() -> Message:
        data = chunks.pop() if chunks else b""
        return {"type": "http.request", "body": data, "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    answer = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    names = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in start["headers"]}
    return start["status"], names, answer
