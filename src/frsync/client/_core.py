"""The one request/response/retry core under `Client` and `AsyncClient` (sans-IO).

A call is a generator of steps: it yields `Send(request)` and is sent back the answer (or the
`httpx.TransportError` met), or yields `Sleep(seconds)` and is sent back None; it returns the
decoded result or raises a `FrsyncError`. Pacing (the shared bucket), the retry policy, the
error mapping and the decoding all live here, once; the blocking and the asyncio client only
perform the steps (`httpx.Client.send` and `time.sleep`, or their awaitable twins).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import TypeVar

import httpx
import msgspec

from frsync.client._bucket import ClientBucket, Ticket
from frsync.client._errors import (
    APIConnectionError,
    FrsyncError,
    RateLimitedError,
    UnexpectedResponseError,
    error_from_response,
)
from frsync.client._retry import Attempts, RetryPolicy

__all__ = ["ClientStats", "Core", "RetryHook", "Send", "Sleep", "Step", "decode_as"]

T = TypeVar("T")

# Told before each wait for a retry: the error met and the seconds about to be waited.
RetryHook = Callable[[FrsyncError, float], None]


@dataclass(frozen=True, slots=True)
class Send:
    """Send this request; the answer (or the transport error) comes back."""

    request: httpx.Request


@dataclass(frozen=True, slots=True)
class Sleep:
    """Wait this many seconds, then carry on."""

    seconds: float


Step = Send | Sleep
Answer = httpx.Response | httpx.TransportError
Call = Generator[Step, Answer | None, T]


@dataclass(slots=True)
class ClientStats:
    """What the client did on the wire, for progress displays and benchmarks."""

    requests: int = 0  # attempts sent, retries included
    retries: int = 0
    rate_limited: int = 0  # 429 answers met
    seconds_paced: float = 0.0  # time spent waiting for the client-side bucket
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, name: str, amount: float = 1) -> None:
        """Count under a lock: a client's threads update the same counters."""
        with self._lock:
            setattr(self, name, getattr(self, name) + amount)


class Core:
    """Turns one call into as many attempts as the policy allows, each paced by the bucket."""

    def __init__(
        self,
        *,
        retry: RetryPolicy,
        bucket: ClientBucket | None,
        random: Callable[[], float],
        clock: Callable[[], float],
        on_retry: RetryHook | None = None,
    ) -> None:
        self._clock = clock
        self.retry = retry
        self.bucket = bucket
        self._random = random
        self._on_retry = on_retry
        self.stats = ClientStats()
        # Once the API has answered, a refused connection is an outage, not a wrong URL.
        self.answered = False

    def call(self, request: httpx.Request, decode: Callable[[httpx.Response], T]) -> Call[T]:
        """Send `request` with pacing and retries; return the decoded 2xx answer."""
        attempts = Attempts(started=self._clock())
        while True:
            outcome = yield from self._attempt(request)
            if not isinstance(outcome, FrsyncError):
                return decode(outcome)
            delay = self.retry.delay(
                outcome, attempts, self._random, answered=self.answered, now=self._clock()
            )
            if delay is None:
                raise outcome
            if self._on_retry is not None:
                self._on_retry(outcome, delay)
            yield Sleep(delay)
            attempts.record(outcome, delay)
            self.stats.add("retries")

    def _attempt(self, request: httpx.Request) -> Call[httpx.Response | FrsyncError]:
        """One request on the wire: the 2xx answer, or the error it amounts to."""
        ticket = None if self.bucket is None else (yield from self._take_turn(self.bucket))
        headers = None
        try:
            self.stats.add("requests")
            answer = yield Send(request)
            if isinstance(answer, httpx.Response):
                headers = answer.headers
        finally:  # an interrupted caller gives its turn back; a sent request counts as spent
            if ticket is not None and self.bucket is not None:
                self.bucket.settle(ticket, headers)
        return self._outcome(request, answer)

    def _take_turn(self, bucket: ClientBucket) -> Call[Ticket]:
        ticket = bucket.reserve()
        try:
            while (delay := bucket.poll(ticket)) > 0:
                self.stats.add("seconds_paced", delay)
                yield Sleep(delay)
        except BaseException:
            bucket.cancel(ticket)
            raise
        return ticket

    def _outcome(
        self, request: httpx.Request, answer: Answer | None
    ) -> httpx.Response | FrsyncError:
        if isinstance(answer, httpx.UnsupportedProtocol):
            raise APIConnectionError(f"bad base URL: {answer}") from answer  # retrying cannot help
        if not isinstance(answer, httpx.Response):
            unreached = APIConnectionError(f"{type(answer).__name__}: {answer}".rstrip(": "))
            unreached.url, unreached.reason = _origin(request), unreached.message
            unreached.message = f"cannot reach {unreached.url}: {unreached.reason}"
            return unreached
        self.answered = True
        if answer.is_success:
            return answer
        error = error_from_response(answer)
        if isinstance(error, RateLimitedError):
            self.stats.add("rate_limited")
            if self.bucket is not None:
                self.bucket.block_for(error.retry_after or 0.0)
        return error


def decode_as(type_: type[T]) -> Callable[[httpx.Response], T]:
    """A decoder of a success body into `type_`; a body that does not fit is an error."""

    def decode(response: httpx.Response) -> T:
        try:
            return msgspec.json.decode(response.content, type=type_)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            method, path = response.request.method, response.request.url.path
            raise UnexpectedResponseError(
                f"unexpected answer to {method} {path}: {exc}",
                status=response.status_code,
                request_id=response.headers.get("x-request-id"),
                body=response.text[:1000],
            ) from exc

    return decode


def _origin(request: httpx.Request) -> str:
    url = request.url
    return str(url.copy_with(path="/", query=None, fragment=None)).rstrip("/")
