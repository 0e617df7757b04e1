"""Settings: read once from flags and `FRSYNC_*` variables, typed, bounded, then passed in.

Every field's type carries its bounds (`msgspec.Meta`), and a `Settings` is checked against
them when it is made, so a bad value stops the command that reads it (`SettingsError`, which
the CLI turns into exit code 2 naming the setting) instead of surfacing later as a 500.
Which URL schemes a store accepts is the store registries' business (`frsync.store`,
`frsync.ratelimit`); the CLI asks them before serving.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
from msgspec import Meta

from frsync.contract import MAX_BODY_BYTES

ENV_PREFIX = "FRSYNC_"
# Fields whose flag and variable keep an older public name (SPEC §7): `--redis-url` and
# FRSYNC_REDIS_URL set `rate_limit_url`, named after its usual value though it also takes
# `memory://` and `shm://`.
PUBLIC_NAMES = {"rate_limit_url": "redis_url"}

NonEmpty = Annotated[str, Meta(min_length=1)]  # URLs, host names
Rate = Annotated[float, Meta(gt=0, le=1e9)]  # tokens per second
Capacity = Annotated[int, Meta(ge=1, le=10**9)]
Seconds = Annotated[float, Meta(gt=0, le=86_400)]
Port = Annotated[int, Meta(ge=0, le=65_535)]  # 0: any free port
Workers = Annotated[int, Meta(ge=1, le=64)]
Size = Annotated[int, Meta(ge=1, le=2**31)]


class SettingsError(ValueError):
    """A setting outside its type or bounds. `name` is the field, `source` where it came from
    (`FRSYNC_RATE` for the environment, the field name otherwise)."""

    def __init__(self, name: str, source: str, value: object, reason: str) -> None:
        self.name, self.source, self.value, self.reason = name, source, value, reason
        super().__init__(f"{source}={value!r}: {reason}")


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the server is configured by. Built once, handed to `create_app`."""

    def __post_init__(self) -> None:
        for name, kind in _field_types().items():
            _check(name, name, getattr(self, name), kind, strict=True)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Defaults, then `FRSYNC_*` variables, then explicit overrides (flags) win.

        Raises `SettingsError` naming the first bad setting (the variable, or the field)."""
        environ = os.environ if environ is None else environ
        values = {name: value for name, value in overrides.items() if value is not None}
        for name, kind in _field_types().items():
            variable = env_variable(name)
            raw = environ.get(variable)
            if name not in values and raw is not None and raw != "":
                values[name] = _check(name, variable, _bool_word(raw, kind), kind, strict=False)
        return cls(**values)

    def replace(self, **changes: Any) -> Settings:
        """A copy with `changes` applied, checked like the original."""
        return dataclasses.replace(self, **changes)

    # The fields. New ones go at the end, each with a type that carries its bounds.

    database_url: NonEmpty = "sqlite:///frsync.db"
    # The rate-limit store, by URL: None or `memory://`, this process's own buckets; `shm://`,
    # shared by the workers of one host; `redis://…`, shared by every process and host. Set by
    # `--redis-url` and FRSYNC_REDIS_URL (PUBLIC_NAMES).
    rate_limit_url: NonEmpty | None = None
    rate: Rate = 2.0  # tokens per second refilled into each API token's bucket
    burst: Capacity = 40  # bucket capacity
    # Requests with a missing or unknown token are limited per client address.
    invalid_token_rate: Rate = 5.0
    invalid_token_burst: Capacity = 20
    host: NonEmpty = "127.0.0.1"
    port: Port = 8000
    workers: Workers = 1
    docs_enabled: bool = True
    # Sandbox mode: the /__admin API (reset, tenants, fault rules, request journal) for an
    # integrator's test suite. Off, every /__admin path is a 404.
    sandbox: bool = False
    max_body_bytes: Size = MAX_BODY_BYTES
    # How long a write waits for a busy store before answering 503.
    store_busy_timeout: Seconds = 2.0
    # Database connection pool per worker process (PostgreSQL).
    pool_size: Annotated[int, Meta(ge=1, le=1000)] = 10
    pool_acquire_timeout: Seconds = 2.0
    # Redis socket timeouts: a slow Redis must never hold a request longer than this.
    redis_timeout: Seconds = 0.25
    # Longest a revoked token keeps working: each process asks the store this often whether
    # any token was revoked (known tokens are otherwise cached for a minute; api/auth.py).
    token_cache_seconds: Seconds = 1.0
    # Bound on how long a client may take to send its headers and body.
    request_read_timeout: Seconds = 10.0
    # Seconds SIGTERM waits for in-flight requests.
    shutdown_grace_seconds: Seconds = 10.0
    # Slow clients: a connection must deliver a request's head within `header_timeout` of
    # connecting (or of the request's first byte), and its body within `request_read_timeout`
    # + 1 s after the head; otherwise it is closed. uvicorn alone waits forever.
    header_timeout: Seconds = 10.0
    # Open connections per worker process; past it a new connection is closed at once.
    max_connections: Size = 1000
    # Proxies whose X-Forwarded-For is trusted for the client address (comma-separated IPs
    # or CIDRs, "*" for any). None: no proxy is trusted, X-Forwarded-For is ignored.
    forwarded_allow_ips: str | None = None
    # Where worker processes share their metrics so one scrape sees all of them; `serve`
    # sets it up for --workers > 1. None: this process's numbers only.
    metrics_dir: str | None = None
    log_requests: bool = True
    # Open connections one client address may hold per worker process, so one client cannot
    # take them all (SPEC §5); addresses of trusted proxies (`forwarded_allow_ips`) are exempt.
    max_connections_per_address: Size = 200
    # Each worker samples its event loop's lag this often (api/loop_lag.py) and /metrics shows
    # it. None: no sampling task runs.
    loop_lag_sample_ms: Annotated[float, Meta(gt=0, le=60_000)] | None = None
    # SQLite: `frsync serve` starts one process that writes every worker's PATCHes
    # (store/sqlite_write_process.py); false, each worker writes its own.
    sqlite_write_process: bool = True
    # Set by `serve` for its workers: that process's socket. None: write here.
    sqlite_write_socket: str | None = None


def public_name(name: str) -> str:
    """The name a field's flag and variable are made from (`--redis-url`, FRSYNC_REDIS_URL)."""
    return PUBLIC_NAMES.get(name, name)


def env_variable(name: str) -> str:
    """The `FRSYNC_*` variable that sets field `name`."""
    return ENV_PREFIX + public_name(name).upper()


@functools.cache
def _field_types() -> dict[str, Any]:
    """Each field's type with its bounds (the annotations are strings until resolved)."""
    hints = typing.get_type_hints(Settings, include_extras=True)
    return {field.name: hints[field.name] for field in dataclasses.fields(Settings)}


def _check(name: str, source: str, value: Any, kind: Any, *, strict: bool) -> Any:
    """`value` converted to `kind` (strings parsed when not `strict`), or `SettingsError`."""
    try:
        return msgspec.convert(value, type=kind, strict=strict)
    except msgspec.ValidationError as error:
        raise SettingsError(name, source, value, _reason(str(error))) from None


_KINDS = {"int": "an integer", "float": "a number", "bool": "true or false", "str": "a string"}


def _reason(message: str) -> str:
    """msgspec's "Expected `int` >= 1, got `str`" as "must be an integer >= 1"."""
    expected = re.fullmatch(r"Expected `(\w+)`(.*?)(?:, got `\w+`)?", message)
    if expected is None:
        return message
    kind, bound = expected.groups()
    return f"must be {_KINDS.get(kind, kind)}{bound}"


_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


def _bool_word(raw: str, kind: Any) -> Any:
    """The words people write for booleans in the environment (`FRSYNC_SANDBOX=yes`)."""
    if kind is bool:
        lowered = raw.strip().lower()
        return True if lowered in _TRUE else False if lowered in _FALSE else raw
    return raw
