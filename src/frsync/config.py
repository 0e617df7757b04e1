"""Settings: read once from flags and `FRSYNC_*` variables, typed, then passed in."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

ENV_PREFIX = "FRSYNC_"


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the server is configured by. Built once, handed to `create_app`."""

    database_url: str = "sqlite:///frsync.db"
    # None: per-process memory buckets. `redis://…`: buckets shared by every process.
    redis_url: str | None = None
    rate: float = 2.0  # tokens per second refilled into each API token's bucket
    burst: int = 40  # bucket capacity
    # Requests with a missing or unknown token are limited per client address.
    invalid_token_rate: float = 5.0
    invalid_token_burst: int = 20
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    docs_enabled: bool = True
    # Sandbox mode: the /__admin API (reset, tenants, fault rules, request journal) for an
    # integrator's test suite. Off, every /__admin path is a 404.
    sandbox: bool = False
    max_body_bytes: int = 1024 * 1024
    # How long a write waits for a busy store before answering 503.
    store_busy_timeout: float = 2.0
    # Database connection pool per worker process (PostgreSQL).
    pool_size: int = 10
    pool_acquire_timeout: float = 2.0
    # Redis socket timeouts: a slow Redis must never hold a request longer than this.
    redis_timeout: float = 0.25
    # Longest a revoked token keeps working: each process asks the store this often whether
    # any token was revoked (known tokens are otherwise cached for a minute; api/auth.py).
    token_cache_seconds: float = 1.0
    # Bound on how long a client may take to send its headers and body.
    request_read_timeout: float = 10.0
    # Seconds SIGTERM waits for in-flight requests.
    shutdown_grace_seconds: float = 10.0
    # Slow clients: a connection must deliver a request's head within `header_timeout` of
    # connecting (or of the request's first byte), and its body within `request_read_timeout`
    # + 1 s after the head; otherwise it is closed. uvicorn alone waits forever.
    header_timeout: float = 10.0
    # Open connections per worker process; past it a new connection is closed at once.
    max_connections: int = 1000
    # Proxies whose X-Forwarded-For is trusted for the client address (comma-separated IPs
    # or CIDRs, "*" for any). None: no proxy is trusted, X-Forwarded-For is ignored.
    forwarded_allow_ips: str | None = None
    # Where worker processes share their metrics so one scrape sees all of them; `serve`
    # sets it up for --workers > 1. None: this process's numbers only.
    metrics_dir: str | None = None
    log_requests: bool = True

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Defaults, then `FRSYNC_*` variables, then explicit overrides (flags) win."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            raw = environ.get(ENV_PREFIX + field.name.upper())
            if raw is not None and raw != "":
                values[field.name] = _parse(field.name, str(field.type), raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def _parse(name: str, type_name: str, raw: str) -> Any:
    try:
        if type_name.startswith("bool"):
            if raw.lower() in {"1", "true", "yes", "on"}:
                return True
            if raw.lower() in {"0", "false", "no", "off"}:
                return False
            raise ValueError(raw)
        if type_name.startswith("int"):
            return int(raw)
        if type_name.startswith("float"):
            return float(raw)
    except ValueError:
        raise ValueError(f"{ENV_PREFIX}{name.upper()}={raw!r} is not a valid {type_name}") from None
    return raw
