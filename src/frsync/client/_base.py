"""What `Client` and `AsyncClient` share besides the core: options, defaults, the bucket."""

from __future__ import annotations

import os
import random

from frsync import __version__
from frsync.client._bucket import ClientBucket, Clock, shared_bucket
from frsync.client._core import ClientStats, Core, RetryHook
from frsync.client._retry import RetryPolicy

__all__ = [
    "BASE_URL_VARIABLE",
    "DEFAULT_BASE_URL",
    "FLXPOINT_BASE_URL",
    "BaseClient",
    "base_url_from_env",
]

# One deliberate default for the library and the commands: $FRSYNC_BASE_URL, else a local
# `frsync serve`. Talking to the real API is always a choice someone wrote down, so a
# connector under development never writes to production by accident.
BASE_URL_VARIABLE = "FRSYNC_BASE_URL"
DEFAULT_BASE_URL = "http://127.0.0.1:8000"
FLXPOINT_BASE_URL = "https://api.flxpoint.com"


class BaseClient:
    """The options both clients take, and the core they run every call through."""

    def __init__(
        self,
        token: str,
        *,
        base_url: str | None,
        retry: RetryPolicy | None,
        pace: bool,
        clock: Clock,
        jitter: random.Random | None,
        on_retry: RetryHook | None,
    ) -> None:
        if not token:
            raise ValueError("a token is required")
        self._base_url = base_url or base_url_from_env()
        self._core = Core(
            retry=retry or RetryPolicy(),
            bucket=shared_bucket(token, self._base_url, clock) if pace else None,
            random=(jitter or random.Random()).random,
            clock=clock,
            on_retry=on_retry,
        )

    def _http_options(self, token: str) -> dict[str, object]:
        return {
            "base_url": self._base_url,
            "headers": {
                "X-API-TOKEN": token,
                "Accept": "application/json",
                "User-Agent": f"frsync/{__version__}",
            },
        }

    @property
    def bucket(self) -> ClientBucket | None:
        """The client-side copy of the token's rate-limit bucket (None with `pace=False`).

        Shared by every client of the same token and base URL in this process.
        """
        return self._core.bucket

    @property
    def answered(self) -> bool:
        """Whether the API has answered anything yet (before that, a refused connection is
        more likely a wrong base URL than an outage)."""
        return self._core.answered

    @property
    def stats(self) -> ClientStats:
        return self._core.stats

    def __repr__(self) -> str:
        return f"<{type(self).__name__} base_url={self._base_url!r}>"


def base_url_from_env() -> str:
    """$FRSYNC_BASE_URL, else `DEFAULT_BASE_URL` (a local `frsync serve`)."""
    return os.environ.get(BASE_URL_VARIABLE) or DEFAULT_BASE_URL
