"""`frsync`: a thin shell over the server and the client. Parse, call, print, exit code.

Exit codes: 0 success, 1 the work ran but some of it failed, 2 usage or input error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from frsync import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="frsync",
        description="Flxpoint fulfillment-request accounting sync: server, sandbox and client.",
    )
    parser.add_argument("--version", action="version", version=f"frsync {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    try:
        from frsync.cli import server

        server.register(commands)
    except ImportError as error:  # the client-only install has no server dependencies
        parser.epilog = (
            f"serve, load, demo and token need the server extra ({error.name} is missing): "
            "pip install 'frsync[server]'"
        )
    from frsync.cli import connector

    connector.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    sys.exit(args.func(args))
