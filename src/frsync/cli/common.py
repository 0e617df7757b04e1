"""What the `frsync` commands share: exit codes, consoles, checked settings, a store to use.

Importable on the client-only install: the server side (`frsync.store`, `frsync.ratelimit`)
is imported only by the functions that need it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from rich.console import Console

from frsync.config import Settings, SettingsError, env_variable, public_name

if TYPE_CHECKING:
    from frsync.store import Store

OK, SOME_FAILED, USAGE = 0, 1, 2  # every command's exit codes
T = TypeVar("T")

console = Console(highlight=False)
err = Console(stderr=True, highlight=False)


def database_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database-url", help="default: $FRSYNC_DATABASE_URL or sqlite:///frsync.db"
    )


def settings_from(args: argparse.Namespace, **flags: Any) -> Settings:
    """Settings from `--database-url` and `flags` over `FRSYNC_*` variables, every value and
    URL scheme checked. Raises `SettingsError` (`main` answers it with exit code 2)."""
    settings = Settings.from_env(database_url=getattr(args, "database_url", None), **flags)
    _check_schemes(settings)
    return settings


def _check_schemes(settings: Settings) -> None:
    """Each URL names a backend its registry knows (the registries are the one home of the
    schemes), so `mysql://…` stops here and not in a traceback or a 500."""
    from frsync.backends import scheme_of
    from frsync.ratelimit import BACKENDS as RATE_LIMIT_BACKENDS

    try:
        scheme_of(settings.database_url)
    except ValueError as error:
        name = "database_url"
        raise SettingsError(name, name, settings.database_url, str(error)) from None
    if settings.rate_limit_url is not None:
        scheme = urlsplit(settings.rate_limit_url).scheme.lower()
        if scheme not in RATE_LIMIT_BACKENDS:
            known = ", ".join(f"{name}://" for name in RATE_LIMIT_BACKENDS)
            reason = f"unsupported rate-limit store scheme {scheme!r} (use one of: {known})"
            name = "rate_limit_url"
            raise SettingsError(name, name, settings.rate_limit_url, reason)


def describe_setting_error(error: SettingsError, args: argparse.Namespace) -> str:
    """Name the setting as the user gave it: the flag, else the variable. URLs are cut to
    their scheme (the rest may hold a password)."""
    value = error.value
    if error.name.endswith("_url") and isinstance(value, str):
        value = f"{urlsplit(value).scheme}://…" if "://" in value else "…"
    name = public_name(error.name)  # argparse's dest too: `--redis-url` is `args.redis_url`
    if getattr(args, name, None) is not None:
        where = f"--{name.replace('_', '-')} {value}"
    else:
        variable = env_variable(error.name)
        where = f"{variable}={value}" if os.environ.get(variable) else f"{name}={value}"
    return f"bad setting {where}: {error.reason}"


def migrate_store(settings: Settings) -> None:
    """Create or upgrade the schema. A database that cannot be opened (a missing folder, a
    refused connection, a wrong password) is a bad `database_url`, said in one line."""
    from sqlalchemy.exc import SQLAlchemyError

    from frsync.store import migrate

    try:
        migrate(settings.database_url)
    except (SQLAlchemyError, OSError) as error:
        cause = getattr(error, "orig", None) or error
        reason = f"cannot open the database: {str(cause).splitlines()[0]}"
        raise SettingsError("database_url", "database_url", settings.database_url, reason) from None


def run_with_store(settings: Settings, work: Callable[[Store], Awaitable[T]]) -> T:
    """Migrate, then run `work(store)` to completion."""
    migrate_store(settings)
    return asyncio.run(_with_store(settings, work))


async def _with_store(settings: Settings, work: Callable[[Store], Awaitable[T]]) -> T:
    from frsync.backends import open_store

    store = await open_store(settings)
    try:
        return await work(store)
    finally:
        await store.close()
