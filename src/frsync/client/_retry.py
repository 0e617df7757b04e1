"""When to retry a failed request, and how long to wait first.

Retried: 429 (after its `Retry-After`), 503 and other 5xx, and connection errors, with capped
exponential backoff and jitter so that clients sharing a token do not retry in step. Never
retried: 400, 401, 404 and other 4xx, which would fail the same way again. Every call is safe
to repeat: the reads change nothing and the PATCH is idempotent by value.

A 429 is the server pacing a token that another process also spends, not a failure: it has a
budget of its own, in seconds waited, so a client that waits its turn behind a busy neighbour
does not give up after a handful of refusals.

A refused connection before the API has ever answered is far more often a wrong base URL than
an outage: with `unreached_patience` set, such a call stops retrying that many seconds after it
began (by the client's clock, the attempts' own time included), so a typo costs seconds, not
a minute.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from frsync.client._errors import (
    APIConnectionError,
    FrsyncError,
    RateLimitedError,
    ServerError,
)

__all__ = ["Attempts", "RetryPolicy"]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How many times to retry and how to space the attempts."""

    max_retries: int = 8  # for 5xx and connection errors
    backoff_base: float = 0.5  # seconds before the first retry, doubled for each next one
    backoff_cap: float = 30.0
    # A `Retry-After` longer than this is not waited out: the error is raised instead.
    max_retry_after: float = 120.0
    # Seconds one call may spend waiting out 429s before the RateLimitedError is raised.
    rate_limit_patience: float = 3600.0
    # Seconds one call may spend retrying connection errors while the API has never
    # answered, counted from its start (None: no limit but `max_retries`).
    unreached_patience: float | None = None

    def delay(
        self,
        error: FrsyncError,
        attempts: Attempts,
        random: Callable[[], float],
        *,
        answered: bool = True,
        now: float = 0.0,
    ) -> float | None:
        """Seconds to wait before retrying after `error`, or None to give up and raise it.

        `answered`: whether the API has answered anything yet, and `now` the client's clock
        (see `unreached_patience`).
        """
        wait = self._delay(error, attempts, random)
        if wait is None or answered or self.unreached_patience is None:
            return wait
        if not isinstance(error, APIConnectionError):
            return wait
        left = self.unreached_patience - (now - attempts.started)
        return None if left <= 0 else min(wait, left)

    def _delay(
        self, error: FrsyncError, attempts: Attempts, random: Callable[[], float]
    ) -> float | None:
        if isinstance(error, RateLimitedError):
            wait = self._rate_limited_wait(error, random)
            if wait is None or attempts.rate_limited_wait + wait > self.rate_limit_patience:
                return None
            return wait
        if attempts.failures >= self.max_retries or not _retryable(error):
            return None
        retry_after = _retry_after(error)
        if retry_after is not None:
            if retry_after > self.max_retry_after:
                return None
            return retry_after + random() * self.backoff_base
        ceiling = min(self.backoff_cap, self.backoff_base * 2.0**attempts.failures)
        return ceiling / 2 + random() * ceiling / 2

    def _rate_limited_wait(
        self, error: RateLimitedError, random: Callable[[], float]
    ) -> float | None:
        if error.retry_after is None:  # a server that does not say: one short backoff step
            return self.backoff_base / 2 + random() * self.backoff_base / 2
        if error.retry_after > self.max_retry_after:
            return None
        # The server said when; the jitter only keeps clients of one token out of step.
        return error.retry_after + random() * self.backoff_base


@dataclass(slots=True)
class Attempts:
    """What one call has been through so far."""

    failures: int = 0  # retries after 5xx and connection errors
    rate_limited_wait: float = 0.0  # seconds waited out after 429s
    started: float = 0.0  # the client's clock when the call began

    def record(self, error: FrsyncError, delay: float) -> None:
        if isinstance(error, RateLimitedError):
            self.rate_limited_wait += delay
        else:
            self.failures += 1


def _retry_after(error: FrsyncError) -> float | None:
    return error.retry_after if isinstance(error, RateLimitedError | ServerError) else None


def _retryable(error: FrsyncError) -> bool:
    return isinstance(error, APIConnectionError | RateLimitedError | ServerError)
