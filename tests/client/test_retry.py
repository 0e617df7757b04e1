"""Retries and backoff, with scripted answers the real server cannot give on demand.

`httpx.MockTransport` plays the API; a fake clock and sleep record every wait, so nothing
really sleeps. Everything else in tests/client runs against the real server.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import pytest

from frsync.client import (
    APIConnectionError,
    APIStatusError,
    AsyncClient,
    BadRequestError,
    Client,
    FrsyncError,
    NotFoundError,
    RateLimitedError,
    RetryPolicy,
    ServerError,
    UnauthorizedError,
    UnexpectedResponseError,
)
from tests.client.conftest import adapt

Answer = httpx.Response | Exception
TOKEN = "tok-test-token-0000000000"


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Script:
    """Answers in order; records each request."""

    def __init__(self, answers: list[Answer]) -> None:
        self._answers: Iterator[Answer] = iter(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = next(self._answers)
        if isinstance(answer, Exception):
            raise answer
        # A fresh copy: a client binds the response it reads, and answers are reused.
        return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)


class FixedRandom(random.Random):
    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def random(self) -> float:
        return self.value


def problem(status: int, **headers: str) -> httpx.Response:
    body = {"type": "about:blank", "title": "x", "status": status, "detail": f"status {status}"}
    return httpx.Response(status, json=body, headers={"X-Request-Id": f"r{status}", **headers})


NO_CONTENT = httpx.Response(204)
Scripted = Callable[..., tuple[Client, Script]]


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture(params=["sync", "async"])
def scripted(request: pytest.FixtureRequest, fake_time: FakeTime) -> Iterator[Scripted]:
    """`scripted(*answers, jitter=0.0, **options)`: a `Client`, or an `AsyncClient` behind
    `AsyncAdapter`, on a `MockTransport` that plays `answers`, with fake time."""

    async def sleep(seconds: float) -> None:
        fake_time.sleep(seconds)

    with ExitStack() as stack:

        def make(*answers: Answer, jitter: float = 0.0, **options: Any) -> tuple[Client, Script]:
            script = Script(list(answers))
            common: dict[str, Any] = {
                "base_url": "https://api.flxpoint.com",
                "transport": httpx.MockTransport(script),
                "clock": fake_time.clock,
                "jitter": FixedRandom(jitter),
                **options,
            }
            if request.param == "sync":
                client = Client(TOKEN, sleep=fake_time.sleep, **common)
                return stack.enter_context(client), script
            return adapt(AsyncClient(TOKEN, sleep=sleep, **common), stack), script

        yield make


def test_429_waits_retry_after_then_succeeds(scripted: Scripted, fake_time: FakeTime) -> None:
    client, script = scripted(problem(429, **{"Retry-After": "3"}), NO_CONTENT, pace=False)
    client.sync_accounting(221, accounting_synced=True)
    assert fake_time.sleeps == [3.0]
    assert (client.stats.rate_limited, client.stats.retries, len(script.requests)) == (1, 1, 2)


def test_429_jitter_stays_within_one_backoff_base(scripted: Scripted, fake_time: FakeTime) -> None:
    client, _ = scripted(problem(429, **{"Retry-After": "1"}), NO_CONTENT, jitter=0.999, pace=False)
    client.sync_accounting(221)
    assert 1.0 <= fake_time.sleeps[0] < 1.5


def test_429_empties_the_client_bucket(scripted: Scripted, fake_time: FakeTime) -> None:
    headers = {"Retry-After": "1", "X-Auth-Pool-Size": "40", "X-Auth-Pool-Used": "40"}
    client, _ = scripted(problem(429, **headers), NO_CONTENT)
    client.sync_accounting(221)
    assert client.bucket is not None
    assert client.bucket.level < 39


def test_server_errors_back_off_exponentially_with_a_cap(
    scripted: Scripted, fake_time: FakeTime
) -> None:
    answers = [problem(500), problem(502), problem(500), problem(504), problem(500), NO_CONTENT]
    policy = RetryPolicy(backoff_base=1.0, backoff_cap=4.0)
    client, _ = scripted(*answers, jitter=1.0, pace=False, retry=policy)
    client.sync_accounting(221)
    assert fake_time.sleeps == [1.0, 2.0, 4.0, 4.0, 4.0]


def test_backoff_jitter_is_at_least_half_the_step(scripted: Scripted, fake_time: FakeTime) -> None:
    client, _ = scripted(problem(500), problem(500), NO_CONTENT, jitter=0.0, pace=False)
    client.sync_accounting(221)
    assert fake_time.sleeps == [0.25, 0.5]  # default base 0.5: half of 0.5, half of 1.0


def test_503_honours_its_retry_after(scripted: Scripted, fake_time: FakeTime) -> None:
    client, _ = scripted(problem(503, **{"Retry-After": "2"}), NO_CONTENT, pace=False)
    client.sync_accounting(221)
    assert fake_time.sleeps == [2.0]


def test_connection_errors_are_retried(scripted: Scripted, fake_time: FakeTime) -> None:
    client, script = scripted(
        httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), NO_CONTENT, pace=False
    )
    client.sync_accounting(221, accounting_synced=True)
    assert len(script.requests) == 3
    assert script.requests[0].content == script.requests[2].content  # same body each time


def test_retries_run_out_with_the_last_error(scripted: Scripted, fake_time: FakeTime) -> None:
    failures = [httpx.ConnectError("refused")] * 4
    client, script = scripted(*failures, pace=False, retry=RetryPolicy(max_retries=3))
    with pytest.raises(APIConnectionError) as caught:
        client.sync_accounting(221)
    assert len(script.requests) == 4
    assert caught.value.status is None
    assert "refused" in str(caught.value)


@pytest.mark.parametrize(
    ("status", "error_type"),
    [
        (400, BadRequestError),
        (401, UnauthorizedError),
        (404, NotFoundError),
        (413, BadRequestError),
        (415, BadRequestError),
        (409, APIStatusError),
    ],
)
def test_client_errors_are_never_retried(
    scripted: Scripted, fake_time: FakeTime, status: int, error_type: type[APIStatusError]
) -> None:
    client, script = scripted(problem(status), NO_CONTENT, pace=False)
    with pytest.raises(error_type) as caught:
        client.sync_accounting(221)
    assert len(script.requests) == 1
    assert fake_time.sleeps == []
    assert (caught.value.status, caught.value.request_id) == (status, f"r{status}")


def test_429s_have_a_patience_of_their_own(scripted: Scripted, fake_time: FakeTime) -> None:
    many = [problem(429, **{"Retry-After": "1"})] * 20  # far more than max_retries
    client, script = scripted(*many, NO_CONTENT, pace=False, retry=RetryPolicy(max_retries=2))
    client.sync_accounting(221)
    assert len(script.requests) == 21
    assert client.stats.rate_limited == 20


def test_429_patience_runs_out(scripted: Scripted, fake_time: FakeTime) -> None:
    many = [problem(429, **{"Retry-After": "2"})] * 10
    client, _ = scripted(*many, pace=False, retry=RetryPolicy(rate_limit_patience=5.0))
    with pytest.raises(RateLimitedError):
        client.sync_accounting(221)
    assert fake_time.sleeps == [2.0, 2.0]


def test_429_without_retry_after_waits_a_short_step(
    scripted: Scripted, fake_time: FakeTime
) -> None:
    client, _ = scripted(httpx.Response(429, text="slow down"), NO_CONTENT, pace=False)
    client.sync_accounting(221)
    assert fake_time.sleeps == [0.25]


def test_too_long_retry_after_is_raised_not_waited(scripted: Scripted, fake_time: FakeTime) -> None:
    client, _ = scripted(problem(429, **{"Retry-After": "3600"}), pace=False)
    with pytest.raises(RateLimitedError) as caught:
        client.sync_accounting(221)
    assert caught.value.retry_after == 3600
    assert fake_time.sleeps == []


def test_plain_text_error_without_request_id_keeps_the_body(
    scripted: Scripted, fake_time: FakeTime
) -> None:
    bare = httpx.Response(500, text="<html>Internal Server Error</html>")
    client, _ = scripted(bare, pace=False, retry=RetryPolicy(max_retries=0))
    with pytest.raises(ServerError) as caught:
        client.get_fulfillment_request(221)
    error = caught.value
    assert (error.status, error.request_id, error.problem) == (500, None, None)
    assert "Internal Server Error" in error.body
    assert "Internal Server Error" in error.message


def test_spring_style_json_error_message_is_used(scripted: Scripted, fake_time: FakeTime) -> None:
    answer = httpx.Response(400, json={"message": "Invalid fulfillmentRequestId", "code": 7})
    client, _ = scripted(answer, pace=False)
    with pytest.raises(BadRequestError, match="Invalid fulfillmentRequestId"):
        client.sync_accounting(221)


def test_wire_format_matches_the_real_api(scripted: Scripted, fake_time: FakeTime) -> None:
    client, script = scripted(NO_CONTENT, pace=False)
    client.sync_accounting(221, accounting_synced=False, accounting_error=None)
    request = script.requests[0]
    assert request.method == "PATCH"
    assert str(request.url) == "https://api.flxpoint.com/fulfillment-requests/221/accounting-sync"
    assert request.headers["X-API-TOKEN"] == TOKEN
    assert request.headers["Content-Type"] == "application/json"
    assert request.content == b'{"accountingSynced":false,"accountingError":null}'


def test_filters_use_the_api_parameter_names(scripted: Scripted, fake_time: FakeTime) -> None:
    client, script = scripted(httpx.Response(200, json={"count": 3}), pace=False)
    count = client.count_fulfillment_requests(
        accounting_synced=False,
        has_accounting_error=True,
        status=["Processed", "Voided"],
        source_id=10,
        order_id="5001",
        fr_numbers=["FR-1", "FR-2"],
    )
    assert count == 3
    assert dict(script.requests[0].url.params) == {
        "filterAccountingSynced": "false",
        "filterHasAccountingError": "true",
        "filterStatus": "Processed,Voided",
        "filterSourceId": "10",
        "findOrderId": "5001",
        "frNumbers": "FR-1,FR-2",
    }


def test_unknown_response_fields_are_ignored(scripted: Scripted, fake_time: FakeTime) -> None:
    body = {"id": 221, "brandNewField": {"x": 1}, "fulfillmentRequestItems": [{"id": 1, "z": 2}]}
    client, _ = scripted(httpx.Response(200, json=body), pace=False)
    fr = client.get_fulfillment_request(221)
    assert fr.id == 221
    assert fr.fulfillment_request_items[0].id == 1


def test_malformed_success_body_is_an_unexpected_response(
    scripted: Scripted, fake_time: FakeTime
) -> None:
    client, _ = scripted(httpx.Response(200, text="not json"), pace=False)
    with pytest.raises(UnexpectedResponseError) as caught:
        client.get_fulfillment_request(221)
    assert isinstance(caught.value, FrsyncError)
    assert caught.value.status == 200


def test_token_never_shows_in_repr(scripted: Scripted) -> None:
    client, _ = scripted()
    assert "tok-test" not in repr(client)


def test_on_retry_is_told_the_error_and_the_wait_before_each_retry(
    scripted: Scripted, fake_time: FakeTime
) -> None:
    told: list[tuple[type[FrsyncError], float]] = []
    answers = (httpx.ConnectError("[Errno 111] Connection refused"), problem(503), NO_CONTENT)
    client, _ = scripted(*answers, pace=False, on_retry=lambda e, s: told.append((type(e), s)))
    client.sync_accounting(221)
    assert told == [(APIConnectionError, 0.25), (ServerError, 0.5)]
    assert fake_time.sleeps == [0.25, 0.5]  # told before the wait, with the wait itself


def test_client_and_commands_default_to_frsync_base_url_else_a_local_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("FRSYNC_BASE_URL", raising=False)
    with Client(TOKEN) as client:
        assert repr(client) == "<Client base_url='http://127.0.0.1:8000'>"
    assert repr(AsyncClient(TOKEN)) == "<AsyncClient base_url='http://127.0.0.1:8000'>"
    monkeypatch.setenv("FRSYNC_BASE_URL", "https://api.flxpoint.com")
    with Client(TOKEN) as client:
        assert repr(client) == "<Client base_url='https://api.flxpoint.com'>"
    assert repr(AsyncClient(TOKEN)) == "<AsyncClient base_url='https://api.flxpoint.com'>"


def test_an_unreachable_api_that_never_answered_is_given_up_within_the_patience(
    scripted: Scripted, fake_time: FakeTime
) -> None:
    refused = [httpx.ConnectError("[Errno 111] Connection refused")] * 20
    client, script = scripted(*refused, pace=False, retry=RetryPolicy(unreached_patience=15.0))
    with pytest.raises(APIConnectionError) as caught:
        client.get_fulfillment_request(221)
    assert sum(fake_time.sleeps) == pytest.approx(15.0)
    assert caught.value.url == "https://api.flxpoint.com"
    assert "cannot reach https://api.flxpoint.com" in str(caught.value)
    assert len(script.requests) == len(fake_time.sleeps) + 1


def test_once_the_api_has_answered_outages_are_retried_as_before(
    scripted: Scripted, fake_time: FakeTime
) -> None:
    refused = [httpx.ConnectError("[Errno 111] Connection refused")] * 8
    policy = RetryPolicy(unreached_patience=15.0)
    client, script = scripted(
        httpx.Response(200, json={"count": 1}), *refused, NO_CONTENT, pace=False, retry=policy
    )
    assert client.count_fulfillment_requests() == 1
    client.sync_accounting(221)
    assert sum(fake_time.sleeps) > 15.0  # the default 8 retries, all waited out
    assert len(script.requests) == 10


def test_a_cancelled_task_gives_its_turn_back() -> None:
    now = [0.0]

    async def main() -> tuple[float, float]:
        transport = httpx.MockTransport(lambda _: httpx.Response(200, json={"count": 1}))
        async with AsyncClient(
            TOKEN, base_url="https://cancel.test", transport=transport, clock=lambda: now[0]
        ) as client:
            bucket = client.bucket
            assert bucket is not None
            for _ in range(40):  # the burst is spent; the clock stands still
                ticket = bucket.reserve()
                assert bucket.poll(ticket) == 0.0
                bucket.settle(ticket)
            waiting = asyncio.create_task(client.count_fulfillment_requests())
            await asyncio.sleep(0.01)  # it has queued and sleeps for its turn
            behind_it = bucket.poll(probe := bucket.reserve())
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting
            alone = bucket.poll(probe)
            return behind_it, alone

    behind_it, alone = asyncio.run(main())
    assert (behind_it, alone) == (1.0, 0.5)  # two turns at 2/s, then one
