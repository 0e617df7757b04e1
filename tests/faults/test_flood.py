"""One address holding hundreds of slow or idle connections cannot take the server: another
address's requests are all answered (the bench, bench/connection_flood.py, measures the
latency with 1,200 connections; this holds the property with fewer, bounded in time)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults.flood import PROBE_TIMEOUT, run_flood
from tests.ops.conftest import env_for, load_with_cli, serve
from tests.support import BASIC_FIXTURE, TOKENS

# The flood is over the process's whole cap, and several times over one address's share.
CAP, SHARE, CONNECTIONS = 200, 40, 300
SECONDS = 6.0


@pytest.mark.parametrize("mode", ["slow", "idle"])
def test_a_flooding_address_leaves_room_for_another(tmp_path: Path, mode: str) -> None:
    env = {"max_connections": str(CAP), "max_connections_per_address": str(SHARE),
           "log_requests": "false", "burst": "1000"}  # fmt: skip
    load_with_cli(env_for(tmp_path), tmp_path, BASIC_FIXTURE)
    with serve(tmp_path, **env) as server:
        result = run_flood(server.base, TOKENS["account1"], 221, mode, CONNECTIONS, SECONDS)
        log = server.output()
    print(result.summary())  # shown by pytest -s
    assert result.opened >= CONNECTIONS, result.summary()  # the flood really ran
    assert result.attempts >= 10, result.summary()
    assert result.failures == [], result.summary()
    assert max(result.latencies) < PROBE_TIMEOUT, result.summary()
    assert log.count("closing its new ones") <= 2  # warned, not once per connection
