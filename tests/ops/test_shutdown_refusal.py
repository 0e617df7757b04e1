"""SIGTERM with `--workers 2`: new connections are refused at once (the supervisor and each
worker close the listening socket), while a request in flight still finishes."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import msgspec
import pytest

from tests.faults.raw_http import close_quietly, read_answer
from tests.ops.conftest import ServeProcess, env_for, load_with_cli, serve
from tests.ops.test_shutdown import _open, _patch_head
from tests.support import BASIC_FIXTURE

GRACE = 3


async def _try_connect(server: ServeProcess) -> str:
    """'refused'; 'answered' (a worker still took it); 'reset' (queued as the last socket
    closed, then dropped: the client sees it at once and may retry); 'hung' (nothing in 1 s)."""
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", server.port), 1
        )
    except ConnectionRefusedError:
        return "refused"
    except TimeoutError:
        return "hung"
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = await read_answer(reader, b"", 1)
    finally:
        await close_quietly(writer)
    if answer.status is not None:
        return "answered"
    return "reset" if answer.closed else "hung"


async def refusal_after_sigterm(server: ServeProcess) -> tuple[float, list[str], bytes]:
    """SIGTERM while a PATCH is in flight, then a connection attempt every 50 ms until the
    process is gone: (seconds until the first refusal, every outcome, the PATCH's answer)."""
    body = msgspec.json.encode({"externalAccountingId": "IN-FLIGHT"})
    reader, writer = await _open(server, _patch_head(221, body) + body[:5])
    await asyncio.sleep(0.5)
    stopping = asyncio.create_task(asyncio.to_thread(server.stop))
    sigterm = time.monotonic()
    outcomes: list[str] = []
    refused_at = None
    finished = False
    while not stopping.done():
        outcomes.append(await _try_connect(server))
        if outcomes[-1] == "refused" and refused_at is None:
            refused_at = time.monotonic() - sigterm
        if not finished and time.monotonic() - sigterm > 1.0:
            writer.write(body[5:])  # the in-flight request completes inside the grace period
            finished = True
        await asyncio.sleep(0.05)
    await stopping
    answer = await read_answer(reader, b"", 2)
    await close_quietly(writer)
    assert refused_at is not None, outcomes
    return (
        refused_at,
        outcomes,
        answer.body if answer.status is None else str(answer.status).encode(),
    )


@pytest.mark.parametrize("workers", ["1", "2"])
async def test_sigterm_refuses_new_connections_at_once_and_finishes_in_flight(
    tmp_path: Path, workers: str
) -> None:
    await asyncio.to_thread(load_with_cli, env_for(tmp_path), tmp_path, BASIC_FIXTURE)
    timeouts = {"shutdown_grace_seconds": str(GRACE), "request_read_timeout": "60"}
    with serve(tmp_path, "--workers", workers, **timeouts) as server:
        refused_at, outcomes, answer = await refusal_after_sigterm(server)
    print(f"first refusal {refused_at:.3f} s after SIGTERM; {outcomes}")  # pytest -s
    assert answer == b"204", answer
    assert "hung" not in outcomes, outcomes
    assert refused_at < 2.0, refused_at  # not at the end of the 3 s grace
    # Once refused, always refused: no worker accepts again.
    first = outcomes.index("refused")
    assert set(outcomes[first:]) == {"refused"}, outcomes
