"""Sending one API call: paced by the client-side bucket, retried by the `RetryPolicy`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from frsync.client._bucket import ClientBucket, Sleep
from frsync.client._errors import (
    APIConnectionError,
    FrsyncError,
    RateLimitedError,
    error_from_response,
)
from frsync.client._retry import Attempts, RetryPolicy

__all__ = ["ClientStats", "RetryHook", "Sender"]

# Told before each wait for a retry: the error met and the seconds about to be waited.
RetryHook = Callable[[FrsyncError, float], None]


@dataclass(slots=True)
class ClientStats:
    """What the client did on the wire, for progress displays and benchmarks."""

    requests: int = 0  # attempts sent, retries included
    retries: int = 0
    rate_limited: int = 0  # 429 answers met
    seconds_paced: float = 0.0  # time spent waiting for the client-side bucket


class Sender:
    """Turns one call into as many attempts as the policy allows, each paced by the bucket."""

    def __init__(
        self,
        http: httpx.Client,
        *,
        retry: RetryPolicy,
        bucket: ClientBucket | None,
        sleep: Sleep,
        random: Callable[[], float],
        on_retry: RetryHook | None = None,
    ) -> None:
        self._http = http
        self._on_retry = on_retry
        self.retry = retry
        self.bucket = bucket
        self._sleep = sleep
        self._random = random
        self.stats = ClientStats()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send with pacing and retries; return a 2xx answer or raise a `FrsyncError`."""
        if kwargs.get("content") is not None:
            kwargs["headers"] = {"Content-Type": "application/json"}
        attempts = Attempts()
        while True:
            outcome = self._attempt(method, path, kwargs)
            if not isinstance(outcome, FrsyncError):
                return outcome
            delay = self.retry.delay(outcome, attempts, self._random)
            if delay is None:
                raise outcome
            if self._on_retry is not None:
                self._on_retry(outcome, delay)
            self._sleep(delay)
            attempts.record(outcome, delay)
            self.stats.retries += 1

    def _attempt(
        self, method: str, path: str, kwargs: dict[str, Any]
    ) -> httpx.Response | FrsyncError:
        """One request on the wire: the 2xx answer, or the error it amounts to."""
        if self.bucket is not None:
            self.stats.seconds_paced += self.bucket.wait_for_room()
        self.stats.requests += 1
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.UnsupportedProtocol as exc:
            raise APIConnectionError(f"bad base URL: {exc}") from exc  # retrying cannot help
        except httpx.TransportError as exc:
            if self.bucket is not None:
                self.bucket.spend()  # it may have reached the server: count it
            return APIConnectionError(f"{type(exc).__name__}: {exc}".rstrip(": "))
        if self.bucket is not None:
            self.bucket.spend()
            self.bucket.observe(response.headers)
        if response.is_success:
            return response
        error = error_from_response(response)
        if isinstance(error, RateLimitedError):
            self.stats.rate_limited += 1
            if self.bucket is not None:
                self.bucket.block_for(error.retry_after or 0.0)
        return error
