"""X-Forwarded-For is believed from no one unless `--forwarded-allow-ips` names the proxy:
otherwise anything on the host could pick a fresh client address per request and guess
tokens past the per-address limit on bad tokens (SPEC §4)."""

from __future__ import annotations

import secrets
from pathlib import Path

import httpx

from tests.ops.conftest import env_for, load_with_cli, serve
from tests.support import BASIC_FIXTURE


def _guess_with_random_addresses(base: str, guesses: int) -> list[int]:
    statuses = []
    with httpx.Client(base_url=base, timeout=5) as client:
        for _ in range(guesses):
            forged = f"203.0.113.{secrets.randbelow(250) + 1}, 10.{secrets.randbelow(250)}.0.1"
            answer = client.get("/fulfillment-requests/221", headers={
                "X-API-TOKEN": f"guess-{secrets.token_hex(8)}", "X-Forwarded-For": forged})  # fmt: skip
            statuses.append(answer.status_code)
    return statuses


def test_forwarded_for_is_ignored_unless_the_proxy_is_listed(tmp_path: Path) -> None:
    load_with_cli(env_for(tmp_path), tmp_path, BASIC_FIXTURE)
    with serve(tmp_path, name="default") as server:
        default = _guess_with_random_addresses(server.base, 30)
    with serve(tmp_path, "--forwarded-allow-ips", "127.0.0.1", name="listed") as server:
        listed = _guess_with_random_addresses(server.base, 30)
    # Default: every guess is from 127.0.0.1, whatever the header says: 20, then limited.
    # (The bucket refills at 5/s, so a slow run may see a 401 among the later ones.)
    assert default[:20] == [401] * 20 and default.count(429) >= 5, default
    # The loopback proxy listed: each guess comes from the address it forwarded.
    assert set(listed) == {401}, listed
