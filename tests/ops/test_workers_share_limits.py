"""`frsync serve --workers 2` without Redis: the workers share one bucket per token through
the host's shared-memory table (SPEC §4), and a configuration that could not is refused."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx

from tests.ops.conftest import FRSYNC, env_for, load_with_cli, serve
from tests.ops.test_workers import _hammer
from tests.support import BASIC_FIXTURE, TOKENS


def test_two_workers_without_redis_admit_one_bucket_per_token(tmp_path: Path) -> None:
    load_with_cli(env_for(tmp_path), tmp_path, BASIC_FIXTURE)
    with serve(tmp_path, "--workers", "2") as server:
        ready = httpx.get(f"{server.base}/readyz", timeout=5)
        # 20 req/s on new connections for 8 s: the kernel spreads them over both workers.
        admitted, elapsed = _hammer([server.base], TOKENS["account1"], 20, 8)
        server.stop()
        server.check_log_is_clean()
    print(f"admitted {admitted} of 160 in {elapsed:.1f} s")  # shown by pytest -s
    # One bucket: 40 + 2/s. Two separate buckets would admit 80 + 4/s.
    assert 40 <= admitted <= 40 + 2 * elapsed + 1, (admitted, elapsed)
    assert ready.json() == {"status": "ok", "store": "ok", "rateLimit": "ok"}


def test_workers_with_in_process_buckets_are_refused(tmp_path: Path) -> None:
    env = env_for(tmp_path, redis_url="memory://")
    started = subprocess.run([*FRSYNC, "serve", "--workers", "2", "--port", "0"], env=env,
                             capture_output=True, text=True, timeout=60)  # fmt: skip
    assert started.returncode == 2, started.stderr
    assert "memory://" in started.stderr and "--workers 2" in started.stderr
