"""`frsync serve | load | demo | token`: the operator's commands (need the server extra)."""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
from pathlib import Path
from typing import Any

import msgspec
import uvicorn
from rich.console import Console
from rich.table import Table

from frsync.config import Settings
from frsync.demo import TOKENS as DEMO_TOKENS
from frsync.demo import demo_fixture
from frsync.errors import FrsyncError
from frsync.fixture import Fixture, FixtureError, decode_fixture, fixture_to_rows, hash_token
from frsync.logs import configure_logging
from frsync.models import TokenType, format_ms, now_ms
from frsync.store import Store, migrate, open_store

console = Console(highlight=False)
err = Console(stderr=True, highlight=False)
DEMO_LABEL = "demo"


def _settings(args: argparse.Namespace, **more: Any) -> Settings:
    return Settings.from_env(database_url=getattr(args, "database_url", None), **more)


async def _with_store(settings: Settings, work: Any) -> Any:
    store = await open_store(settings)
    try:
        return await work(store)
    finally:
        await store.close()


def _run(settings: Settings, work: Any) -> Any:
    """Migrate, then run `work(store)` to completion."""
    migrate(settings.database_url)
    return asyncio.run(_with_store(settings, work))


def new_token() -> str:
    """256 random bits, URL-safe, with a prefix that secret scanners can recognise."""
    return "frs_" + secrets.token_urlsafe(32)


# serve ---------------------------------------------------------------------------------


def app_from_env() -> Any:
    """uvicorn's factory in each worker process: settings come through the environment."""
    from frsync.api import create_app

    configure_logging()  # worker processes are spawned fresh: set logging up in each
    return create_app(Settings.from_env())


def cmd_serve(args: argparse.Namespace) -> int:
    flags = {"redis_url": args.redis_url, "host": args.host, "port": args.port,
             "workers": args.workers, "rate": args.rate, "burst": args.burst}  # fmt: skip
    settings = _settings(args, **flags)
    migrate(settings.database_url)
    # Workers are separate processes: hand them the resolved settings as FRSYNC_* variables.
    for name in ("database_url", "redis_url", "rate", "burst"):
        value = getattr(settings, name)
        if value is not None:
            os.environ[f"FRSYNC_{name.upper()}"] = str(value)
    configure_logging()
    backend = settings.database_url.split(":", 1)[0]
    where = f"http://{settings.host}:{settings.port}"
    err.print(f"frsync serving on {where} ({settings.workers} worker(s), {backend} store)")
    uvicorn.run(
        "frsync.cli.server:app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        loop="uvloop" if sys.platform != "win32" else "auto",
        http="httptools",
        access_log=False,
        log_config=None,
        timeout_graceful_shutdown=int(settings.shutdown_grace_seconds),
        server_header=False,
    )
    return 0


# load / demo ---------------------------------------------------------------------------


def cmd_load(args: argparse.Namespace) -> int:
    settings = _settings(args)
    path = Path(args.file)
    try:
        data = fixture_to_rows(decode_fixture(path.read_bytes()), now=now_ms())
    except OSError as error:
        err.print(f"frsync load: cannot read {path}: {error.strerror}")
        return 2
    except FixtureError as error:
        err.print(f"frsync load: {path}: {error}; nothing was loaded")
        return 2
    try:
        _run(settings, lambda store: store.load([data]))
    except FrsyncError as error:
        err.print(f"frsync load: {path}: {error.detail}")
        return 2
    console.print(f"loaded {path}: {len(data.fulfillment_requests)} fulfillment requests, "
                  f"{len(data.items)} items, {len(data.tokens)} tokens")  # fmt: skip
    return 0


async def _seed_demo(store: Store) -> list[tuple[str, int, str]]:
    data = fixture_to_rows(msgspec.convert(demo_fixture(), type=Fixture), now=now_ms())
    await store.load([data])
    for token in await store.list_tokens():  # each run issues fresh demo tokens
        if token.label == DEMO_LABEL and token.revoked_at is None:
            await store.revoke_token(token.id)
    issued = []
    for token_type, scope_id in DEMO_TOKENS:
        plaintext = new_token()
        await store.create_token(hash_token(plaintext), token_type, scope_id, DEMO_LABEL)
        issued.append((token_type, scope_id, plaintext))
    return issued


def cmd_demo(args: argparse.Namespace) -> int:
    settings = _settings(args)
    issued = _run(settings, _seed_demo)
    console.print(f"Demo data is in {settings.database_url}: 24 fulfillment requests, "
                  "FR 221 with item 12312 among them.\n")  # fmt: skip
    table = Table(title="Demo tokens (shown once; `frsync demo` again issues new ones)")
    for column in ("type", "scope", "X-API-TOKEN"):
        table.add_column(column)
    for token_type, scope_id, plaintext in issued:
        table.add_row(token_type, str(scope_id), plaintext)
    console.print(table)
    base = f"http://{settings.host}:{settings.port}"
    # Plain print: rich would wrap these lines and break the copy-paste.
    print("\nRecord FR 221 as synced (the reference page's success-1 example):")
    print(
        f"curl -i -X PATCH {base}/fulfillment-requests/221/accounting-sync \\\n"
        f"  -H 'X-API-TOKEN: {issued[0][2]}' -H 'Content-Type: application/json' \\\n"
        """  -d '{"accountingSynced": true, "externalAccountingId": "TEST-221", """
        """"accountingError": null, """
        """"items": [{"id": 12312, "externalAccountingItemId": "TEST-221-A"}]}'"""
    )
    print("\nThen see it:")
    print(f"curl -s {base}/fulfillment-requests/221 -H 'X-API-TOKEN: {issued[0][2]}'")
    return 0


# token ---------------------------------------------------------------------------------


def cmd_token_create(args: argparse.Namespace) -> int:
    plaintext = new_token()
    token_type: TokenType = args.type

    async def work(store: Store) -> int:
        return await store.create_token(hash_token(plaintext), token_type, args.id, args.label)

    try:
        token_id = _run(_settings(args), work)
    except FrsyncError as error:
        err.print(f"frsync token create: {error.detail}")
        return 2
    err.print(f"token {token_id} ({args.type} {args.id}) created; the token is shown only once:")
    print(plaintext)
    return 0


def cmd_token_revoke(args: argparse.Namespace) -> int:
    revoked = _run(_settings(args), lambda store: store.revoke_token(args.token_id))
    if not revoked:
        err.print(f"frsync token revoke: no live token with id {args.token_id}")
        return 2
    console.print(f"token {args.token_id} revoked")
    return 0


def cmd_token_list(args: argparse.Namespace) -> int:
    tokens = _run(_settings(args), lambda store: store.list_tokens())
    table = Table()
    for column in ("id", "type", "scope", "label", "created", "revoked"):
        table.add_column(column)
    for t in tokens:
        revoked = format_ms(t.revoked_at) if t.revoked_at else ""
        table.add_row(str(t.id), t.token_type, str(t.scope_id), t.label or "",
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
    serve.set_defaults(func=cmd_serve)

    load = commands.add_parser("load", help="load a fixture file (idempotent upsert)")
    load.add_argument("file", metavar="FILE.json")
    _database_flag(load)
    load.set_defaults(func=cmd_load)

    demo = commands.add_parser("demo", help="seed realistic demo data and print tokens")
    _database_flag(demo)
    demo.set_defaults(func=cmd_demo)

    token = commands.add_parser("token", help="create, revoke or list API tokens")
    actions = token.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = actions.add_parser("create", help="issue a token (printed once)")
    create.add_argument("--type", required=True, choices=["account", "source", "channel"])
    create.add_argument("--id", required=True, type=int, help="id of the account/source/channel")
    create.add_argument("--label", help="a note to recognise the token by")
    create.set_defaults(func=cmd_token_create)
    revoke = actions.add_parser("revoke", help="revoke a token by its id")
    revoke.add_argument("token_id", metavar="TOKEN_ID", type=int)
    revoke.set_defaults(func=cmd_token_revoke)
    listing = actions.add_parser("list", help="list tokens (never their values)")
    listing.set_defaults(func=cmd_token_list)
    for parser in (create, revoke, listing):
        _database_flag(parser)
