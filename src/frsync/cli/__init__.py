"""`frsync`: a thin shell over the server and the client. Parse, call, print, exit code.

Each command module registers its own subcommands: `server` (serve), `seed` (load, demo) and
`token` need the server extra; `connector` (push, pending) runs on the base install. Their
shared helpers live in `common`, which imports none of them.

Exit codes: 0 success, 1 the work ran but some of it failed, 2 usage or input error (a bad
setting included).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from frsync import __version__
from frsync.cli.common import USAGE, describe_setting_error, err
from frsync.config import SettingsError

SERVER_COMMANDS = {
    "serve": "run the API server",
    "load": "load fixture and JSON Lines files",
    "demo": "seed realistic demo data and print tokens",
    "token": "create, revoke or list API tokens",
}
INSTALL_SERVER = "pip install 'frsync[server]'"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="frsync",
        description="Flxpoint fulfillment-request accounting sync: server, sandbox and client.",
    )
    parser.add_argument("--version", action="version", version=f"frsync {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _register_server_commands(commands)
    from frsync.cli import certify, connector

    connector.register(commands)
    certify.register(commands)
    return parser


def _register_server_commands(commands: Any) -> None:
    try:
        from frsync.cli import seed, server, token
    except ImportError as error:  # the client-only install has no server dependencies
        for name, summary in SERVER_COMMANDS.items():
            _register_missing(commands, name, summary, error.name or "a server dependency")
        return
    for module in (server, seed, token):
        module.register(commands)


def _register_missing(commands: Any, name: str, summary: str, missing: str) -> None:
    """A stand-in that says how to get the command, instead of argparse's "invalid choice"."""
    stub = commands.add_parser(name, help=f"{summary} (needs {INSTALL_SERVER})", add_help=False)

    def explain(args: argparse.Namespace) -> int:
        err.print(
            f"frsync {name} needs the server extra ({missing} is not installed): {INSTALL_SERVER}",
            markup=False,
            soft_wrap=True,
        )
        return USAGE

    stub.set_defaults(func=explain, takes_any_arguments=True)


def main(argv: Sequence[str] | None = None) -> None:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown and not getattr(args, "takes_any_arguments", False):
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    try:
        code = args.func(args)
    except SettingsError as error:
        message = f"frsync {args.command}: {describe_setting_error(error, args)}"
        err.print(message, markup=False, soft_wrap=True)
        code = USAGE
    sys.exit(code)
