"""Sandbox mode behind a real server: a dropped connection (uvicorn in a thread, frsync's
protocol), and two `frsync serve --workers 2 --sandbox` processes sharing one `times: 1` rule
and one journal."""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from frsync.config import Settings
from tests.conftest import TABLES
from tests.ops.conftest import env_for, load_with_cli, serve
from tests.sandbox.conftest import SANDBOX_TABLES
from tests.sandbox.helpers import PATCH_221, SYNCED
from tests.support import (
    BASIC_FIXTURE,
    OPERATOR_TOKEN,
    TOKENS,
    require_redis,
    run_sql,
    serve_over_tcp,
)

REDIS_URL = os.environ.get("FRSYNC_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
ADMIN = {"X-API-TOKEN": OPERATOR_TOKEN}
API = {"X-API-TOKEN": TOKENS["account1"]}


def test_drop_closes_the_connection_without_an_answer_and_applies_nothing(
    sandbox_settings: Settings,
) -> None:
    with serve_over_tcp(sandbox_settings) as base:
        rule = {"match": {"method": "PATCH"}, "action": {"drop": True}, "times": 1}
        assert httpx.post(f"{base}/__admin/faults", json=rule, headers=ADMIN).status_code == 201
        with pytest.raises(httpx.RemoteProtocolError):
            httpx.patch(f"{base}{PATCH_221}", json=SYNCED, headers=API)
        fr = httpx.get(f"{base}/fulfillment-requests/221", headers=API).json()
        [_, dropped] = httpx.get(f"{base}/__admin/requests", headers=ADMIN).json()
        # The next request on a new connection is served: the rule fired once.
        assert httpx.patch(f"{base}{PATCH_221}", json=SYNCED, headers=API).status_code == 204
    assert fr["accountingSynced"] is None
    assert dropped["status"] is None and dropped["body"] == SYNCED


def test_delay_rule_on_a_real_server_holds_only_its_own_request(
    sandbox_settings: Settings,
) -> None:
    with serve_over_tcp(sandbox_settings) as base:
        rule = {"match": {"fulfillmentRequestId": 221}, "action": {"delayMs": 2000}}
        assert httpx.post(f"{base}/__admin/faults", json=rule, headers=ADMIN).status_code == 201
        with ThreadPoolExecutor(2) as pool:
            slow = pool.submit(httpx.get, f"{base}/fulfillment-requests/221", headers=API)
            fast = httpx.get(f"{base}/fulfillment-requests/222", headers=API, timeout=1.5)
            assert not slow.done()
            assert slow.result().status_code == 200
    assert fast.status_code == 200


def _patch_on_fresh_connections(base: str, count: int) -> list[int]:
    def one(_: int) -> int:
        # No keep-alive: each request is a new connection, which either worker may accept.
        with httpx.Client(limits=httpx.Limits(max_keepalive_connections=0)) as client:
            return client.patch(
                f"{base}{PATCH_221}", json=SYNCED, headers=API, timeout=10
            ).status_code

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, range(count)))


def _two_workers_share_one_rule_and_journal(tmp_path: Path, *args: str, **env: str) -> None:
    load_with_cli(env_for(tmp_path, **env), tmp_path, BASIC_FIXTURE)
    with serve(tmp_path, "--workers", "2", "--sandbox", *args, **env) as server:
        base = server.base
        rule = {"match": {"method": "PATCH"}, "action": {"status": 503}, "times": 1}
        assert httpx.post(f"{base}/__admin/faults", json=rule, headers=ADMIN).status_code == 201
        statuses = _patch_on_fresh_connections(base, 30)
        # Every worker reads the one journal: ask on fresh connections too.
        counts = set()
        for _ in range(6):
            with httpx.Client(limits=httpx.Limits(max_keepalive_connections=0)) as client:
                entries = client.get(f"{base}/__admin/requests", headers=ADMIN).json()
                counts.add(len(entries))
        pids = {line.split("[")[1].split("]")[0] for line in server.output().splitlines()
                if "Started server process" in line}  # fmt: skip
    assert statuses.count(503) == 1 and statuses.count(204) == 29, statuses
    assert counts == {30}
    assert len(pids) == 2  # two workers really served


@pytest.mark.slow
def test_two_sqlite_workers_share_one_times_rule_and_one_journal(tmp_path: Path) -> None:
    _two_workers_share_one_rule_and_journal(tmp_path)


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.redis
def test_two_postgres_workers_with_redis_share_one_times_rule_and_one_journal(
    tmp_path: Path, postgres_url: str
) -> None:
    require_redis(REDIS_URL)
    asyncio.run(
        run_sql(postgres_url, f"TRUNCATE {TABLES}, {SANDBOX_TABLES} RESTART IDENTITY CASCADE")
    )
    _two_workers_share_one_rule_and_journal(
        tmp_path, "--redis-url", REDIS_URL, database_url=postgres_url, pool_size="4"
    )


def _statuses_on_fresh_connections(base: str, path: str, token: str, count: int) -> list[int]:
    def one(_: int) -> int:
        with httpx.Client(limits=httpx.Limits(max_keepalive_connections=0)) as client:
            return client.get(
                f"{base}{path}", headers={"X-API-TOKEN": token}, timeout=10
            ).status_code

    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(one, range(count)))


def _tenants_are_isolated_and_removed_at_once(tmp_path: Path, *args: str, **env: str) -> None:
    load_with_cli(env_for(tmp_path, **env), tmp_path, BASIC_FIXTURE)
    with serve(tmp_path, "--workers", "2", "--sandbox", *args, **env) as server:
        base = server.base
        a, b = (httpx.post(f"{base}/__admin/tenants", json={"fulfillmentRequests": 1},
                           headers=ADMIN).json() for _ in range(2))  # fmt: skip
        for tenant, status in ((a, 502), (b, 504)):
            rule = {"action": {"status": status}}  # a catch-all, scoped to the tenant
            url = f"{base}/__admin/tenants/{tenant['accountId']}/faults"
            assert httpx.post(url, json=rule, headers=ADMIN).status_code == 201
        path_a = f"/fulfillment-requests/{a['fulfillmentRequestIds'][0]}"
        path_b = f"/fulfillment-requests/{b['fulfillmentRequestIds'][0]}"
        seen_a = _statuses_on_fresh_connections(base, path_a, a["tokens"]["account"], 12)
        seen_b = _statuses_on_fresh_connections(base, path_b, b["tokens"]["channel"], 12)
        assert (
            httpx.delete(f"{base}/__admin/tenants/{a['accountId']}", headers=ADMIN).status_code
            == 204
        )
        after_delete = _statuses_on_fresh_connections(base, path_a, a["tokens"]["source"], 12)
        assert httpx.post(f"{base}/__admin/reset", headers=ADMIN).status_code == 204
        after_reset = _statuses_on_fresh_connections(base, path_b, b["tokens"]["channel"], 12)
        untouched = _statuses_on_fresh_connections(base, "/fulfillment-requests/221",
                                                   TOKENS["account1"], 6)  # fmt: skip
        pids = {line.split("[")[1].split("]")[0] for line in server.output().splitlines()
                if "Started server process" in line}  # fmt: skip
    assert set(seen_a) == {502} and set(seen_b) == {504}
    assert set(after_delete) == {401} and set(after_reset) == {401}
    assert set(untouched) == {200}
    assert len(pids) == 2


@pytest.mark.slow
def test_two_sqlite_workers_scope_rules_to_tenants_and_remove_them_at_once(
    tmp_path: Path,
) -> None:
    _tenants_are_isolated_and_removed_at_once(tmp_path)


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.redis
def test_two_postgres_workers_scope_rules_to_tenants_and_remove_them_at_once(
    tmp_path: Path, postgres_url: str
) -> None:
    require_redis(REDIS_URL)
    asyncio.run(
        run_sql(postgres_url, f"TRUNCATE {TABLES}, {SANDBOX_TABLES} RESTART IDENTITY CASCADE")
    )
    _tenants_are_isolated_and_removed_at_once(
        tmp_path, "--redis-url", REDIS_URL, database_url=postgres_url, pool_size="4"
    )
