"""`frsync serve` as a real process over TCP: the README's path, and real concurrent writers."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import msgspec
import pytest

from tests.support import BASIC_FIXTURE, TOKENS, free_port, wait_ready

FRSYNC = [sys.executable, "-m", "frsync"]


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*FRSYNC, *args], env=env, capture_output=True, text=True, timeout=60)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    """`frsync load` a fixture, then `frsync serve --workers 2` on a free port."""
    env = {**os.environ, "FRSYNC_DATABASE_URL": f"sqlite:///{tmp_path / 'frsync.db'}"}
    fixture = tmp_path / "fixture.json"
    fixture.write_bytes(msgspec.json.encode(BASIC_FIXTURE))
    loaded = run("load", str(fixture), env=env)
    assert loaded.returncode == 0, loaded.stderr
    port = free_port()
    log = tmp_path / "serve.log"  # a file, not a pipe: a full pipe would stall the server
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [
                *FRSYNC,
                "serve",
                "--port",
                str(port),
                "--workers",
                "2",
                "--burst",
                "1000",
                "--rate",
                "100",
            ],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base)
        yield base
    finally:
        process.terminate()
        assert process.wait(timeout=20) == 0
        output = log.read_text()
        assert "Traceback" not in output, output
        assert '"status":204' in output  # one JSON access line per request
        for token in TOKENS.values():
            assert token not in output  # the log never carries a token


def test_served_over_tcp_patch_then_get(server: str) -> None:
    headers = {"X-API-TOKEN": TOKENS["account1"]}
    body = {
        "accountingSynced": True,
        "externalAccountingId": "TEST-221",
        "accountingError": None,
        "items": [{"id": 12312, "externalAccountingItemId": "TEST-221-A"}],
    }
    answer = httpx.patch(
        f"{server}/fulfillment-requests/221/accounting-sync", json=body, headers=headers
    )
    assert answer.status_code == 204
    fr = httpx.get(f"{server}/fulfillment-requests/221", headers=headers).json()
    assert fr["externalAccountingId"] == "TEST-221"


def test_twenty_concurrent_writers_on_two_workers(server: str) -> None:
    headers = {"X-API-TOKEN": TOKENS["account1"]}
    url = f"{server}/fulfillment-requests/221/accounting-sync"

    def send(n: int) -> int:
        body = {
            "externalAccountingId": f"ext-{n}",
            "accountingError": f"err-{n}",
            "items": [
                {"id": 12312, "externalAccountingItemId": f"a-{n}"},
                {"id": 12313, "externalAccountingItemId": f"b-{n}"},
            ],
        }
        with httpx.Client(timeout=30) as client:
            return client.patch(url, json=body, headers=headers).status_code

    with ThreadPoolExecutor(20) as pool:
        statuses = list(pool.map(send, range(20)))
    assert statuses == [204] * 20
    fr = httpx.get(f"{server}/fulfillment-requests/221", headers=headers).json()
    values = [fr["externalAccountingId"], fr["accountingError"]]
    values += [i["externalAccountingItemId"] for i in fr["fulfillmentRequestItems"]]
    assert len({v.split("-", 1)[1] for v in values}) == 1, values
