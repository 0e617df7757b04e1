"""Tokens (SPEC §3) and the per-token bucket (SPEC §4), with a clock the test controls."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from frsync.config import Settings
from frsync.errors import StoreBusy
from tests.api.helpers import SYNC, assert_problem
from tests.conftest import client_for
from tests.support import OPERATOR_TOKEN, TOKENS, running_app


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def timed_app(settings: Settings, clock: FakeClock) -> AsyncIterator[Starlette]:
    async with running_app(settings, clock=clock) as app:
        yield app


BAD_TOKENS: dict[str, dict[str, str]] = {
    "missing": {},
    "empty": {"X-API-TOKEN": ""},
    "whitespace": {"X-API-TOKEN": "   "},
    "unknown": {"X-API-TOKEN": "tok-not-a-real-token-000000"},
    "bearer only": {"Authorization": f"Bearer {TOKENS['account1']}"},
    "oversized": {"X-API-TOKEN": "x" * 8000},
    "non-ascii": {"X-API-TOKEN": "tök-ümlaut-token-ééééééé"},
    "prefix of a real one": {"X-API-TOKEN": TOKENS["account1"][:-1]},
}


@pytest.mark.parametrize("name", list(BAD_TOKENS))
async def test_bad_tokens_get_one_identical_401(app: Starlette, name: str) -> None:
    async with client_for(app) as client:
        client.headers.update({k: v.encode() for k, v in BAD_TOKENS[name].items()})
        answer = await client.patch(SYNC.format(221), json={"accountingSynced": True})
        reference = await client.get("/fulfillment-requests/1")
    problem = assert_problem(answer, 401)
    assert "X-API-TOKEN" in problem["detail"]
    assert "x-auth-pool-size" not in answer.headers
    assert {k: v for k, v in problem.items() if k != "requestId"} == {
        k: v for k, v in reference.json().items() if k != "requestId"
    }


@pytest.mark.parametrize(
    ("content", "content_type", "path"),
    [
        (b"\xff" * 3_000_000, "application/json", "/fulfillment-requests/221/accounting-sync"),
        (b"{}", "text/plain", "/fulfillment-requests/221/accounting-sync"),
        (b"{}", "application/json", "/fulfillment-requests/9223372036854775808/accounting-sync"),
        (b"[[[[", "application/json", "/fulfillment-requests/x/accounting-sync"),
    ],
)
async def test_nothing_is_parsed_before_the_token(
    anon: httpx.AsyncClient, content: bytes, content_type: str, path: str
) -> None:
    answer = await anon.patch(path, content=content, headers={"Content-Type": content_type})
    assert_problem(answer, 401)


async def test_header_name_is_case_insensitive(app: Starlette) -> None:
    async with client_for(app, **{"x-api-token": TOKENS["account1"]}) as client:
        assert (await client.get("/fulfillment-requests/221")).status_code == 200


async def test_every_authenticated_answer_reports_the_pool(api: httpx.AsyncClient) -> None:
    for answer in (
        await api.get("/fulfillment-requests/221"),
        await api.get("/fulfillment-requests/999"),
        await api.patch(
            SYNC.format(221), content=b"{", headers={"Content-Type": "application/json"}
        ),
    ):
        assert answer.headers["x-auth-pool-size"] == "40"
        assert answer.headers["x-auth-replenished-per-second"] == "2"
    assert answer.headers["x-auth-pool-used"] == "3"


async def test_bucket_burst_then_429_then_refill(timed_app: Starlette, clock: FakeClock) -> None:
    async with client_for(timed_app, TOKENS["account1"]) as client:
        for used in range(1, 41):
            answer = await client.get("/fulfillment-requests/999")  # a 404 costs too
            assert answer.headers["x-auth-pool-used"] == str(used)
        refused = await client.patch(SYNC.format(221), json={"accountingSynced": True})
        problem = assert_problem(refused, 429)
        assert refused.headers["retry-after"] == "1"
        assert refused.headers["x-auth-pool-used"] == "40"
        assert "rate" in problem["detail"].lower()
        again = await client.get("/fulfillment-requests/221")
        assert again.status_code == 429  # a refused request costs nothing, but frees nothing
        clock.now += 0.5  # one token back at 2/s
        assert (await client.get("/fulfillment-requests/221")).status_code == 200
        assert (await client.get("/fulfillment-requests/221")).status_code == 429
        clock.now += 20  # the whole bucket back
        answer = await client.get("/fulfillment-requests/221")
        assert answer.headers["x-auth-pool-used"] == "1"
        fr = (await client.get("/fulfillment-requests/221")).json()
    assert fr["accountingSynced"] is None  # the refused PATCH changed nothing


async def test_buckets_are_per_token(timed_app: Starlette) -> None:
    async with (
        client_for(timed_app, TOKENS["account1"]) as one,
        client_for(timed_app, TOKENS["source10"]) as two,
    ):
        for _ in range(40):
            await one.get("/fulfillment-requests/221")
        assert (await one.get("/fulfillment-requests/221")).status_code == 429
        assert (await two.get("/fulfillment-requests/221")).status_code == 200


async def test_token_guessing_is_limited_per_address(
    timed_app: Starlette, clock: FakeClock
) -> None:
    async with (
        client_for(timed_app, "tok-guess-000000000000") as guesser,
        client_for(timed_app, TOKENS["account1"]) as honest,
    ):
        statuses = [(await guesser.get("/fulfillment-requests/221")).status_code for _ in range(25)]
        assert statuses[:20] == [401] * 20
        assert statuses[20:] == [429] * 5
        refused = await guesser.get("/fulfillment-requests/221")
        assert int(refused.headers["retry-after"]) >= 1
        assert (
            await honest.get("/fulfillment-requests/221")
        ).status_code == 200  # valid tokens pass
        clock.now += 1.0  # 5 per second come back
        assert (await guesser.get("/fulfillment-requests/221")).status_code == 401


async def test_revocation_takes_effect_within_one_second(
    timed_app: Starlette, clock: FakeClock, settings: Settings
) -> None:
    from frsync.tokens import hash_token

    store = timed_app.state.store
    token_id = await store.create_token(hash_token("tok-revoke-me-0000000000"), "account", 1, "t")
    async with client_for(timed_app, "tok-revoke-me-0000000000") as client:
        assert (await client.get("/fulfillment-requests/221")).status_code == 200
        assert await store.revoke_token(token_id)
        clock.now += 1.0
        assert_problem(await client.get("/fulfillment-requests/221"), 401)


def _database_bytes(database_url: str) -> bytes:
    path = Path(database_url.removeprefix("sqlite:///"))
    wal = path.with_name(path.name + "-wal")
    return path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


async def test_tokens_are_stored_only_as_hashes(settings: Settings, app: Starlette) -> None:
    tokens = await app.state.store.list_tokens()
    assert len(tokens) == len(TOKENS) + 1  # and the operator's
    if settings.database_url.startswith("sqlite"):
        raw = _database_bytes(settings.database_url)
        for plaintext in [*TOKENS.values(), OPERATOR_TOKEN]:
            assert plaintext.encode() not in raw


class CountingStore:
    """The real store, counting the token lookups that reach it."""

    def __init__(self, store: object) -> None:
        self._store = store
        self.lookups = 0
        self.revision_checks = 0

    async def find_token(self, token_hash: bytes) -> object:
        self.lookups += 1
        return await self._store.find_token(token_hash)  # type: ignore[attr-defined]

    async def revoked_token_count(self) -> int:
        self.revision_checks += 1
        return await self._store.revoked_token_count()  # type: ignore[attr-defined, no-any-return]


async def test_a_known_token_is_looked_up_once_not_per_request(
    timed_app: Starlette, clock: FakeClock
) -> None:
    from frsync.api.auth import TokenCache
    from frsync.tokens import hash_token

    counting = CountingStore(timed_app.state.store)
    cache = TokenCache(counting, 1.0, clock)  # type: ignore[arg-type]
    for _ in range(30):
        clock.now += 0.5  # 15 s: well past the one-second revocation window
        assert await cache.lookup(hash_token(TOKENS["account1"])) is not None
    assert counting.lookups == 1
    assert counting.revision_checks == 15
    token_id = await timed_app.state.store.create_token(
        hash_token("tok-cached-then-revoked"), "account", 1, None
    )
    assert await cache.lookup(hash_token("tok-cached-then-revoked")) is not None
    await timed_app.state.store.revoke_token(token_id)
    clock.now += 1.0
    assert await cache.lookup(hash_token("tok-cached-then-revoked")) is None


class UnreachableForRevocations(CountingStore):
    """The real store, whose revocation check fails while `down` (a database outage)."""

    down = False

    async def revoked_token_count(self) -> int:
        if self.down:
            self.revision_checks += 1
            raise StoreBusy()
        return await super().revoked_token_count()


async def test_a_revocation_check_that_finds_the_store_down_keeps_the_cache(
    timed_app: Starlette, clock: FakeClock
) -> None:
    """The request then meets the outage at its own store call, past the rate limiter: its 503
    carries the pool headers. The check runs again a second later, and a revocation bites."""
    from frsync.api.auth import TokenCache
    from frsync.tokens import hash_token

    store = UnreachableForRevocations(timed_app.state.store)
    cache = TokenCache(store, 1.0, clock)  # type: ignore[arg-type]
    token_id = await timed_app.state.store.create_token(
        hash_token("tok-outage"), "account", 1, None
    )
    assert await cache.lookup(hash_token("tok-outage")) is not None
    store.down = True
    await timed_app.state.store.revoke_token(token_id)  # through a store this worker can't reach
    clock.now += 1.0
    assert await cache.lookup(hash_token("tok-outage")) is not None
    assert store.revision_checks == 2 and store.lookups == 1
    store.down = False
    clock.now += 0.5
    assert await cache.lookup(hash_token("tok-outage")) is not None  # checked again at 1 s
    clock.now += 0.5
    assert await cache.lookup(hash_token("tok-outage")) is None


async def test_operator_token_is_refused_on_fr_endpoints_saying_why(app: Starlette) -> None:
    async with client_for(app, OPERATOR_TOKEN) as client:
        patch = await client.patch(SYNC.format(221), json={"accountingSynced": True})
        listing = await client.get("/fulfillment-requests")
        one = await client.get("/fulfillment-requests/221")
    for answer in (patch, listing, one):
        problem = assert_problem(answer, 401)
        assert "operator token" in problem["detail"]
        assert "x-auth-pool-size" not in answer.headers
    async with client_for(app, TOKENS["account1"]) as client:
        assert (await client.get("/fulfillment-requests/221")).json()["accountingSynced"] is None


async def test_whitespace_around_the_token_is_not_part_of_it(app: Starlette) -> None:
    async with client_for(app) as client:
        padded = {"X-API-TOKEN": f" \t{TOKENS['account1']} "}
        answer = await client.patch(
            SYNC.format(221), json={"accountingSynced": True}, headers=padded
        )
    assert answer.status_code == 204
