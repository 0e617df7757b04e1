"""PostgreSQL: a PATCH is one round trip, and a read-only database answers 503 (with /readyz
saying so) until it takes writes again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from starlette.applications import Starlette

from frsync.store.postgres import PostgresStore
from tests.conftest import POSTGRES_URL, TABLES, client_for
from tests.support import TOKENS, make_settings, run_sql, running_app

pytestmark = pytest.mark.postgres

SYNC = "/fulfillment-requests/{}/accounting-sync"


@pytest.fixture
def clean_url(postgres_url: str) -> str:
    asyncio.run(run_sql(postgres_url, f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE"))
    return postgres_url


@pytest.fixture
async def app(tmp_path: Path, clean_url: str) -> AsyncIterator[Starlette]:
    # One pooled connection, so the statement log below sees every statement of a request.
    settings = make_settings(
        tmp_path, database_url=clean_url, pool_size=1, burst=1000, store_busy_timeout=1.0
    )
    async with running_app(settings) as app:
        yield app


class StatementLog:
    def __init__(self) -> None:
        self.statements: list[str] = []

    def __call__(self, record: Any) -> None:
        self.statements.append(record.query)


async def _logged(store: PostgresStore) -> StatementLog:
    log = StatementLog()
    async with store.acquire() as connection:
        connection.add_query_logger(log)
    return log


async def test_a_patch_is_one_round_trip_and_so_is_a_refused_one(app: Starlette) -> None:
    store: PostgresStore = app.state.store
    async with client_for(app, TOKENS["account1"]) as api:
        # Warm up: the token is cached and the function's statement prepared on the connection.
        assert (await api.patch(SYNC.format(221), json={"accountingError": "x"})).status_code == 204
        log = await _logged(store)

        body = {"accountingSynced": True, "externalAccountingId": "QB-221",
                "items": [{"id": 12312, "externalAccountingItemId": "L-1"}]}  # fmt: skip
        assert (await api.patch(SYNC.format(221), json=body)).status_code == 204
        assert len(log.statements) == 1, log.statements
        assert "frsync_sync_accounting" in log.statements[0]

        log.statements.clear()
        refused = await api.patch(SYNC.format(221), json={"items": [{"id": 99999}]})
        assert refused.status_code == 400
        assert len(log.statements) == 1, log.statements

        fr = (await api.get("/fulfillment-requests/221")).json()
        assert (fr["accountingSynced"], fr["externalAccountingId"]) == (True, "QB-221")
        assert fr["fulfillmentRequestItems"][0]["externalAccountingItemId"] == "L-1"
        history = (await api.get(SYNC.format(221) + "/history")).json()
        assert len(history) == 2  # the refused PATCH left none


async def test_a_read_only_database_answers_503_and_readyz_503_until_it_takes_writes(
    app: Starlette, clean_url: str
) -> None:
    name = clean_url.rsplit("/", 1)[1]
    terminate = (
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
        f" WHERE datname = '{name}' AND application_name = 'frsync'"
    )
    async with client_for(app, TOKENS["account1"]) as api, client_for(app) as anon:
        assert (await api.patch(SYNC.format(221), json={"accountingError": "a"})).status_code == 204
        await _admin(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
        try:
            await _admin(terminate)  # sessions opened from now on are read-only
            answers = [
                await api.patch(SYNC.format(221), json={"accountingError": f"ro{n}"})
                for n in range(3)
            ]
            assert {a.status_code for a in answers} == {503}, [a.text for a in answers]
            assert all(a.headers["Retry-After"] for a in answers)
            assert all("Traceback" not in a.text for a in answers)
            ready = await anon.get("/readyz")
            assert ready.status_code == 503 and ready.json()["store"] == "unavailable"
            assert (await api.get("/fulfillment-requests/221")).status_code == 200  # reads go on
        finally:
            await _admin(f'ALTER DATABASE "{name}" RESET default_transaction_read_only')
        # Recovery needs no restart: the probe's failure dropped the read-only session.
        for _ in range(20):
            if (await anon.get("/readyz")).status_code == 200:
                break
            await asyncio.sleep(0.1)
        assert (await anon.get("/readyz")).status_code == 200
        assert (await api.patch(SYNC.format(221), json={"accountingError": "b"})).status_code == 204
        fr = (await api.get("/fulfillment-requests/221")).json()
        assert fr["accountingError"] == "b"


async def _admin(sql: str) -> None:
    # From the server's admin database: the test database itself may be read-only.
    connection = await asyncpg.connect(POSTGRES_URL, timeout=5)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()
