"""`server_protocol.py` subclasses uvicorn's private `HttpToolsProtocol` and reads its
internals. pyproject.toml bounds uvicorn's version; this test fails loudly, naming what moved,
when an upgrade changes what the subclass relies on."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle
from uvicorn.server import ServerState

from frsync.config import Settings
from frsync.server_protocol import GuardedHttpToolsProtocol, protocol_for

HOOKS = (
    "connection_made",
    "connection_lost",
    "on_message_begin",
    "on_headers_complete",
    "on_message_complete",
)


def test_the_protocol_hooks_the_subclass_overrides_still_exist() -> None:
    for name in HOOKS:
        assert name in vars(HttpToolsProtocol), f"uvicorn's HttpToolsProtocol lost {name}()"
        assert name in vars(GuardedHttpToolsProtocol), f"server_protocol no longer hooks {name}()"
    parameters = list(inspect.signature(HttpToolsProtocol.__init__).parameters)
    assert parameters[:4] == ["self", "config", "server_state", "app_state"], parameters


async def test_the_attributes_the_subclass_reads_are_where_it_reads_them() -> None:
    seen: dict[str, Any] = {}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        protocol = seen["protocol"]
        seen["cycle"] = protocol.cycle  # the request in flight, as `_expire` reads it
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    config = uvicorn.Config(app, log_config=None, lifespan="off")
    config.load()
    state = ServerState()
    protocol_class = protocol_for(Settings())

    def make() -> HttpToolsProtocol:
        protocol = protocol_class(config=config, server_state=state, app_state={})
        seen["protocol"] = protocol
        return protocol

    loop = asyncio.get_running_loop()
    server = await loop.create_server(make, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (await reader.readline()).startswith(b"HTTP/1.1 204")
    protocol = seen["protocol"]
    assert protocol.connections is state.connections, "HttpToolsProtocol.connections moved"
    assert protocol in protocol.connections
    assert protocol.loop is loop, "HttpToolsProtocol.loop moved"
    assert isinstance(protocol.transport, asyncio.Transport), "HttpToolsProtocol.transport moved"
    assert isinstance(seen["cycle"], RequestResponseCycle), "HttpToolsProtocol.cycle moved"
    assert seen["cycle"].response_complete is True, "RequestResponseCycle.response_complete moved"
    writer.close()
    server.close()
    await server.wait_closed()
