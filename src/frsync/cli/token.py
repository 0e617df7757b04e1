"""`frsync token create | revoke | list`: API and operator tokens (needs the server extra).

A token's plaintext is printed once, alone on standard output, so scripts can capture it;
the store keeps only its hash.
"""

from __future__ import annotations

import argparse
from typing import Any

from rich.table import Table

from frsync.cli.common import USAGE, console, database_flag, err, run_with_store, settings_from
from frsync.errors import FrsyncError
from frsync.models import OPERATOR, OPERATOR_SCOPE_ID, SCOPED_TOKEN_TYPES, TokenType, format_ms
from frsync.store import Store
from frsync.tokens import hash_token, new_token


def cmd_token_create(args: argparse.Namespace) -> int:
    plaintext = new_token()
    token_type: TokenType = args.type
    if (token_type == OPERATOR) != (args.id is None):
        need = "takes no --id" if token_type == OPERATOR else "needs --id N"
        err.print(f"frsync token create: a {token_type} token {need}")
        return USAGE
    scope_id = OPERATOR_SCOPE_ID if args.id is None else args.id

    async def work(store: Store) -> int:
        return await store.create_token(hash_token(plaintext), token_type, scope_id, args.label)

    try:
        token_id = run_with_store(settings_from(args), work)
    except FrsyncError as error:
        err.print(f"frsync token create: {error.detail}")
        return USAGE
    scope = "every account" if token_type == OPERATOR else f"{token_type} {scope_id}"
    err.print(f"token {token_id} ({token_type}, {scope}) created; the token is shown only once:")
    print(plaintext)
    return 0


def cmd_token_revoke(args: argparse.Namespace) -> int:
    revoked = run_with_store(settings_from(args), lambda store: store.revoke_token(args.token_id))
    if not revoked:
        err.print(f"frsync token revoke: no live token with id {args.token_id}")
        return USAGE
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
        created = format_ms(t.created_at)
        table.add_row(str(t.id), t.token_type, scope, t.label or "", created, revoked)
    console.print(table)
    return 0


def register(commands: Any) -> None:
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
        database_flag(parser)
