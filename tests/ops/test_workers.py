"""`frsync serve --workers N` as real processes: one token's bucket shared by every worker
(and host) through Redis, and a dead Redis degrading to local buckets without hanging."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import TABLES
from tests.ops.conftest import env_for, load_with_cli, serve
from tests.support import BASIC_FIXTURE, TOKENS, free_port, run_sql


def _fresh_connection_client(token: str) -> httpx.Client:
    # No keep-alive: each request is a new connection, which the kernel hands to any worker.
    limits = httpx.Limits(max_keepalive_connections=0)
    return httpx.Client(headers={"X-API-TOKEN": token}, limits=limits, timeout=5)


def _hammer(bases: list[str], token: str, per_second: float, seconds: float) -> tuple[int, float]:
    """Requests at a steady pace, round-robin over `bases`; (admitted, first-to-last seconds)."""
    admitted = 0
    started = time.monotonic()
    count = int(per_second * seconds)
    with _fresh_connection_client(token) as client:
        for n in range(count):
            time.sleep(max(0.0, started + n / per_second - time.monotonic()))
            answer = client.get(f"{bases[n % len(bases)]}/fulfillment-requests/221")
            assert answer.status_code in (200, 429), answer.text
            admitted += answer.status_code == 200
    return admitted, time.monotonic() - started


@pytest.mark.slow
@pytest.mark.redis
def test_four_workers_admit_one_token_at_the_shared_rate(
    tmp_path: Path, redis_url: str, fresh_token: tuple[str, dict[str, Any]]
) -> None:
    token, fixture = fresh_token
    load_with_cli(env_for(tmp_path), tmp_path, fixture)
    with serve(tmp_path, "--workers", "4", "--redis-url", redis_url) as server:
        admitted, elapsed = _hammer([server.base], token, per_second=20, seconds=30)
        metrics = httpx.get(f"{server.base}/metrics").text
        server.stop()
        server.check_log_is_clean()
    # The bucket allows 40 + 2/s over the time the requests really took (longer than 30 s on a
    # busy machine). Never more than that, whichever worker answered; and, as the client sends
    # far faster than 2/s, not much less: four separate buckets would admit about 4 times it.
    allowed = 40 + 2 * elapsed
    print(f"admitted {admitted} of 600 in {elapsed:.1f} s")  # shown by pytest -s
    assert 0.9 * (40 + 2 * 30) <= admitted <= allowed + 1, (admitted, elapsed)
    assert "frsync_workers 4" in metrics


@pytest.mark.postgres
@pytest.mark.redis
def test_two_hosts_on_postgres_and_redis_share_a_tokens_bucket(
    tmp_path: Path, postgres_url: str, redis_url: str, fresh_token: tuple[str, dict[str, Any]]
) -> None:
    """Two `frsync serve --workers 2` on two ports over one database, as two hosts behind a
    load balancer would be (docs/deploy.md)."""
    token, fixture = fresh_token
    asyncio.run(run_sql(postgres_url, f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE"))
    load_with_cli(env_for(tmp_path, database_url=postgres_url), tmp_path, fixture)
    on_pg = {"database_url": postgres_url, "pool_size": "4"}
    with (
        serve(tmp_path, "--workers", "2", "--redis-url", redis_url, name="a", **on_pg) as a,
        serve(tmp_path, "--workers", "2", "--redis-url", redis_url, name="b", **on_pg) as b,
    ):
        admitted, elapsed = _hammer([a.base, b.base], token, per_second=40, seconds=2)
    # Alone, each host would admit its own burst of 40: 80 in all.
    assert 40 <= admitted <= 40 + 2 * elapsed + 1, (admitted, elapsed)


def test_dead_redis_answers_fast_and_reports_degraded(tmp_path: Path) -> None:
    load_with_cli(env_for(tmp_path), tmp_path, BASIC_FIXTURE)
    dead = f"redis://127.0.0.1:{free_port()}/0"
    with serve(tmp_path, "--workers", "2", "--redis-url", dead) as server:
        with _fresh_connection_client(TOKENS["account1"]) as client:
            for _ in range(10):
                started = time.monotonic()
                answer = client.get(f"{server.base}/fulfillment-requests/221")
                assert answer.status_code == 200
                assert time.monotonic() - started < 5.0  # a hang on the dead Redis: forever
            ready = client.get(f"{server.base}/readyz")
        server.stop()
        output = server.output()
    assert ready.status_code == 200
    assert ready.json() == {"status": "degraded", "store": "ok", "rateLimit": "degraded"}
    assert "using in-process buckets" in output
    assert "Traceback" not in output
