"""A loopback TCP proxy that fails the ways networks fail, for PostgreSQL and Redis alike.

It runs its own event loop in a daemon thread, so synchronous tests, client threads and
server subprocesses can all sit on either side of it. Modes:

    pass       relay both ways
    refuse     stop listening (connects get ECONNREFUSED) and reset every carried connection
    blackhole  accept, read, and drop every byte both ways; nothing is ever answered
    slow       relay every chunk after `delay` seconds

`reset()` aborts every carried connection once (an RST, as a restarting peer sends) and keeps
the mode. Leaving `blackhole` resets the connections it swallowed: bytes dropped mid-stream
leave a protocol out of step, and a partition long enough to notice ends that way in real
networks too (TCP gives up and resets). Flapping is a caller switching modes in a loop.
"""

from __future__ import annotations

import asyncio
import gc
import threading
import warnings
from collections.abc import Coroutine
from typing import Any, Literal

Mode = Literal["pass", "refuse", "blackhole", "slow"]

# For the tests that run this proxy (`pytest.mark.filterwarnings`): it can leak the transport
# of a connection accepted just as it stops listening (asyncio's accept/close race), and a
# load thread's client its socket when a reset cuts a response short. When the garbage
# collector finds one during a test rather than at `close`, that is the harness's socket,
# not frsync's: the server under test is another process.
PROXY_LEAK = (
    r"ignore:Exception ignored in. <(function _SelectorTransport.__del__|socket.socket)"
    r":pytest.PytestUnraisableExceptionWarning"
)


class FaultProxy:
    """Listens on 127.0.0.1:`port` (0: any free port) and relays to `target_host:target_port`."""

    def __init__(self, target_host: str, target_port: int, port: int = 0) -> None:
        self._target = (target_host, target_port)
        self.port = port
        self.mode: Mode = "pass"
        self.delay = 0.0
        self.accepted = 0  # connections accepted while listening, for tests to check
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    # Called from any thread -----------------------------------------------------------

    def start(self) -> FaultProxy:
        self._thread.start()
        self._call(self._listen())
        return self

    def set_mode(self, mode: Mode, delay: float = 0.0) -> None:
        """Switch to `mode`; takes effect for every carried and future connection."""
        self._call(self._switch(mode, delay))

    def reset(self) -> None:
        """Abort every carried connection once; the mode stays."""
        self._call(self._abort_all())

    def close(self) -> None:
        self._call(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        # A relay cancelled while `open_connection` completes leaks that transport (a known
        # asyncio race); collect it here, quietly, rather than in some later test's frame.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            gc.collect()
        self._loop.close()

    def _call(self, coro: Coroutine[Any, Any, None]) -> None:
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    # On the proxy's loop ----------------------------------------------------------------

    async def _listen(self) -> None:
        # reuse_address (asyncio's default on POSIX) lets `refuse` → `pass` take the port back.
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _switch(self, mode: Mode, delay: float) -> None:
        previous, self.mode, self.delay = self.mode, mode, delay
        if mode == "refuse":
            if self._server is not None:
                self._server.close()
                self._server = None
            await self._abort_all()
        elif self._server is None:
            await self._listen()
        if previous == "blackhole" and mode != "blackhole":
            await self._abort_all()

    async def _abort_all(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        await self._abort_all()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.accepted += 1
        self._writers.add(writer)
        upstream: asyncio.StreamWriter | None = None
        try:
            if self.mode == "blackhole":
                await _drain_forever(reader)
                return
            try:
                up_reader, upstream = await asyncio.open_connection(*self._target)
            except OSError:
                return  # the real server is away: hang up, as a refused connect would
            self._writers.add(upstream)
            await asyncio.gather(self._pipe(reader, upstream), self._pipe(up_reader, writer))
        finally:
            for end in (writer, upstream):
                if end is not None:
                    self._writers.discard(end)
                    end.transport.abort()
            self._tasks.discard(task)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                if self.mode == "blackhole":
                    continue  # swallowed: the other side waits for an answer that never comes
                if self.mode == "slow" and self.delay > 0:
                    await asyncio.sleep(self.delay)
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.transport.abort()  # one side gone: so is the other, as with a real RST


async def _drain_forever(reader: asyncio.StreamReader) -> None:
    try:
        while await reader.read(65536):
            pass
    except OSError:
        pass
