"""`frsync serve | load | demo | token`: the operator's commands (need the server extra).

`load` and `demo` live in `frsync.cli.seed`.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import math
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from frsync import supervisor
from frsync.config import Settings
from frsync.errors import FrsyncError
from frsync.logs import configure_logging
from frsync.models import OPERATOR, OPERATOR_SCOPE_ID, SCOPED_TOKEN_TYPES, TokenType, format_ms
from frsync.server_protocol import PROTOCOL
from frsync.store import Store, migrate, open_store
from frsync.tokens import hash_token, new_token

console = Console(highlight=False)
err = Console(stderr=True, highlight=False)


def settings_from(args: argparse.Namespace, **more: Any) -> Settings:
    return Settings.from_env(database_url=getattr(args, "database_url", None), **more)


async def _with_store(settings: Settings, work: Any) -> Any:
    store = await open_store(settings)
    try:
        return await work(store)
    finally:
        await store.close()


def run_with_store(settings: Settings, work: Any) -> Any:
    """Migrate, then run `work(store)` to completion."""
    migrate(settings.database_url)
    return asyncio.run(_with_store(settings, work))


# serve ---------------------------------------------------------------------------------


def app_from_env() -> Any:
    """uvicorn's factory in each worker process: settings come through the environment."""
    from frsync.api import create_app
    from frsync.server_protocol import GuardedHttpToolsProtocol

    configure_logging()  # worker processes are spawned fresh: set logging up in each
    settings = Settings.from_env()
    GuardedHttpToolsProtocol.configure(settings)  # before this worker accepts a connection
    return create_app(settings)


def _export_for_workers(settings: Settings) -> None:
    """Workers are separate processes: hand them the resolved settings as FRSYNC_* variables."""
    for name in ("database_url", "redis_url", "rate", "burst", "metrics_dir", "sandbox"):
        value = getattr(settings, name)
        if value is not None:
            os.environ[f"FRSYNC_{name.upper()}"] = str(value)


def _metrics_dir(settings: Settings) -> tuple[Settings, str | None]:
    """With several workers, a directory where they pool their metrics (see api/metrics.py).

    Returns the settings to use and a directory to remove afterwards (one made here)."""
    if settings.metrics_dir:
        for stale in Path(settings.metrics_dir).glob("*.msgpack"):
            stale.unlink()  # a previous run's counters would inflate this run's totals
        return settings, None
    if settings.workers <= 1:
        return settings, None
    made = tempfile.mkdtemp(prefix="frsync-metrics-")
    return dataclasses.replace(settings, metrics_dir=made), made


def cmd_serve(args: argparse.Namespace) -> int:
    flags = {"redis_url": args.redis_url, "host": args.host, "port": args.port,
             "workers": args.workers, "rate": args.rate, "burst": args.burst,
             "forwarded_allow_ips": args.forwarded_allow_ips,
             "sandbox": True if args.sandbox else None}  # fmt: skip
    settings, made_dir = _metrics_dir(settings_from(args, **flags))
    try:
        settings, made_table = supervisor.shared_rate_limits(settings)
    except supervisor.ServeConfigError as error:
        err.print(f"frsync serve: {error}")
        return 2
    migrate(settings.database_url)
    _export_for_workers(settings)
    configure_logging()
    backend = settings.database_url.split(":", 1)[0]
    where = f"http://{settings.host}:{settings.port}"
    mode = ", sandbox" if settings.sandbox else ""
    err.print(f"frsync serving on {where} ({settings.workers} worker(s), {backend} store{mode})")
    try:
        supervisor.run(  # uvicorn.run, closing the listening socket at SIGTERM
            "frsync.cli.server:app_from_env",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            loop="uvloop" if sys.platform != "win32" else "auto",
            http=PROTOCOL,  # httptools, plus header/body deadlines and a connection cap
            access_log=False,
            log_config=None,
            **supervisor.proxy_options(settings),  # no proxy trusted unless listed
            # uvicorn takes whole seconds; 0 would mean "do not wait at all".
            timeout_graceful_shutdown=max(1, math.ceil(settings.shutdown_grace_seconds)),
            server_header=False,
        )
    finally:
        if made_dir is not None:
            shutil.rmtree(made_dir, ignore_errors=True)
        supervisor.remove_dir(made_table)
    return 0


# token ---------------------------------------------------------------------------------


def cmd_token_create(args: argparse.Namespace) -> int:
    plaintext = new_token()
    token_type: TokenType = args.type
    if (token_type == OPERATOR) != (args.id is None):
        need = "takes no --id" if token_type == OPERATOR else "needs --id N"
        err.print(f"frsync token create: a {token_type} token {need}")
        return 2
    scope_id = OPERATOR_SCOPE_ID if args.id is None else args.id

    async def work(store: Store) -> int:
        return await store.create_token(hash_token(plaintext), token_type, scope_id, args.label)

    try:
        token_id = run_with_store(settings_from(args), work)
    except FrsyncError as error:
        err.print(f"frsync token create: {error.detail}")
        return 2
    scope = "every account" if token_type == OPERATOR else f"{token_type} {scope_id}"
    err.print(f"token {token_id} ({token_type}, {scope}) created; the token is shown only once:")
    print(plaintext)
    return 0


def cmd_token_revoke(args: argparse.Namespace) -> int:
    revoked = run_with_store(settings_from(args), lambda store: store.revoke_token(args.token_id))
    if not revoked:
        err.print(f"frsync token revoke: no live token with id {args.token_id}")
        return 2
    console.print(f"token {args.token_id} revoked")
    return 0


def cmd_token_list(args: argparse.Namespace) -> int:
    tokens = run_with_store(settings_from(args), lambda store: store.list_tokens())
    table = Table()
    for column in ("id", "type", "scope", "label", "created", "revoked"):
        table.add_column(column)
    for t in tokens:
        revoked = format_ms(t.revoked_at) if t.revoked_at else ""
        scope = "all" if t.token_type == OPERATOR else str(t.scope_id)
        table.add_row(str(t.id), t.token_type, scope, t.label or "",
                      format_ms(t.created_at), revoked)  # fmt: skip
    console.print(table)
    return 0


# parser --------------------------------------------------------------------------------


def _database_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database-url", help="default: $FRSYNC_DATABASE_URL or sqlite:///frsync.db"
    )


def register(commands: Any) -> None:
    serve = commands.add_parser("serve", help="run the API server")
    _database_flag(serve)
    serve.add_argument("--redis-url", help="share rate limits through Redis ($FRSYNC_REDIS_URL)")
    serve.add_argument("--host", help="default 127.0.0.1")
    serve.add_argument("--port", type=int, help="default 8000")
    serve.add_argument("--workers", type=int, help="worker processes (default 1)")
    serve.add_argument("--rate", type=float, help="bucket refill per second (default 2)")
    serve.add_argument("--burst", type=int, help="bucket capacity (default 40)")
    serve.add_argument(
        "--forwarded-allow-ips",
        help="proxies trusted to set X-Forwarded-For, comma-separated IPs or CIDRs"
        " ($FRSYNC_FORWARDED_ALLOW_IPS; default: none, the header is ignored)",
    )
    serve.add_argument(
        "--sandbox",
        action="store_true",
        help="serve as a test sandbox: the /__admin API for resets, tenants, fault rules and"
        " the request journal, with an operator token ($FRSYNC_SANDBOX=1)",
    )
    serve.set_defaults(func=cmd_serve)

    from frsync.cli import seed  # here: seed uses this module's helpers

    seed.register(commands, _database_flag)

    token = commands.add_parser("token", help="create, revoke or list API tokens")
    actions = token.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = actions.add_parser("create", help="issue a token (printed once)")
    create.add_argument("--type", required=True, choices=[*SCOPED_TOKEN_TYPES, OPERATOR])
    create.add_argument(
        "--id", type=int, help="id of the account/source/channel (not for an operator token)"
    )
    create.add_argument("--label", help="a note to recognise the token by")
    create.set_defaults(func=cmd_token_create)
    revoke = actions.add_parser("revoke", help="revoke a token by its id")
    revoke.add_argument("token_id", metavar="TOKEN_ID", type=int)
    revoke.set_defaults(func=cmd_token_revoke)
    listing = actions.add_parser("list", help="list tokens (never their values)")
    listing.set_defaults(func=cmd_token_list)
    for parser in (create, revoke, listing):
        _database_flag(parser)
