"""`frsync load` and `frsync demo`: data into the store, from files or generated.

Both write in one transaction: a load that fails anywhere leaves the store as it was.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from frsync.cli.common import USAGE, console, database_flag, err, run_with_store, settings_from
from frsync.errors import FrsyncError
from frsync.models import OPERATOR, TokenType, now_ms
from frsync.store import LoadData, Store
from frsync.tokens import hash_token, new_token

# `frsync serve` registers these commands too: what only they use (the generator, the
# loader, the fixture reader, progress bars) is imported when they run, not at every start.

DEMO_LABEL = "demo"
LOAD_HELP = """\
Load fixture files (FILE.json, the format in docs/contract.md) and JSON Lines files (FILE.jsonl or
.ndjson: one fulfillment request per line, in the fixture's fulfillmentRequests shape).
Fixture files are loaded first, so a large load is usually one small file of accounts,
sources, channels and tokens, and one large file of lines:

  frsync load scopes.json frs.jsonl

Everything named is loaded in one transaction: a bad line anywhere loads nothing, and the
message names the file and the line. Loading the same files again changes nothing.
See docs/loading.md."""


def cmd_load(args: argparse.Namespace) -> int:
    from frsync.bulk import Loader
    from frsync.cli.progress import progress_bar
    from frsync.fixture import FixtureError

    loader = Loader([Path(name) for name in args.files], now=now_ms())
    started = time.monotonic()
    try:
        with progress_bar(err, "loading", loader.line_bytes()) as advance:
            loader.progress = advance
            run_with_store(settings_from(args), lambda store: store.load(loader.batches()))
    except OSError as error:
        err.print(f"frsync load: cannot read {error.filename}: {error.strerror}", soft_wrap=True)
        return USAGE
    except FixtureError as error:
        err.print(f"frsync load: {error}; nothing was loaded", soft_wrap=True)
        return USAGE
    except FrsyncError as error:
        err.print(f"frsync load: {error.detail}", soft_wrap=True)
        return USAGE
    totals = loader.totals
    console.print(
        f"loaded {', '.join(args.files)}: {totals.fulfillment_requests:,} fulfillment requests,"
        f" {totals.items:,} items, {totals.tokens} tokens in {time.monotonic() - started:.1f} s",
        soft_wrap=True,
    )
    return 0


def _demo_batches(size: int, advance: Callable[[int, int], None]) -> Iterable[LoadData]:
    import msgspec

    from frsync import generate
    from frsync.demo import demo_fixture
    from frsync.fixture import Fixture, fixture_to_rows

    yield fixture_to_rows(msgspec.convert(demo_fixture(), type=Fixture), now=now_ms())
    if size:
        yield from generate.load_batches(size, progress=lambda frs: advance(frs, frs))


async def _issue_demo_tokens(store: Store) -> list[tuple[TokenType, int, str]]:
    from frsync.demo import TOKENS as DEMO_TOKENS

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
    from frsync.cli.progress import progress_bar

    if args.jsonl:
        if not args.size:
            err.print("frsync demo: --jsonl writes the generated FRs: give --size N too")
            return USAGE
        return _write_demo_jsonl(Path(args.jsonl), args.size)
    settings = settings_from(args)
    with progress_bar(err, "generating", args.size or 0) as advance:

        async def seed(store: Store) -> list[tuple[TokenType, int, str]]:
            await store.load(_demo_batches(args.size or 0, advance))
            return await _issue_demo_tokens(store)

        issued = run_with_store(settings, seed)
    extra = f" and {args.size:,} generated ones" if args.size else ""
    console.print(
        f"Demo data is in {settings.database_url}: 24 fulfillment requests{extra},"
        " FR 221 with item 12312 among them.\n",
        soft_wrap=True,
    )
    _print_tokens(issued, f"http://{settings.host}:{settings.port}")
    return 0


def _write_demo_jsonl(path: Path, size: int) -> int:
    from frsync import generate
    from frsync.cli.progress import progress_bar

    with progress_bar(err, "writing", size) as advance:
        scopes = generate.write_jsonl(path, size, progress=lambda frs: advance(frs, frs))
    console.print(
        f"wrote {size:,} fulfillment requests to {path} and their accounts, sources and"
        f" channels to {scopes}; load them with:\n  frsync load {scopes} {path}",
        soft_wrap=True,
    )
    return 0


def _print_tokens(issued: list[tuple[TokenType, int, str]], base: str) -> None:
    from rich.table import Table

    table = Table(title="Demo tokens (shown once; `frsync demo` again issues new ones)")
    for column in ("type", "scope", "X-API-TOKEN"):
        table.add_column(column)
    for token_type, scope_id, plaintext in issued:
        scope = "every account" if token_type == OPERATOR else str(scope_id)
        table.add_row(token_type, scope, plaintext)
    console.print(table)
    operator = next(plaintext for kind, _, plaintext in issued if kind == OPERATOR)
    print(f"\nConsole: {base}/console (sign in with the operator token above)")
    print(f"API reference: {base}/docs")
    print(f"Sandbox admin API (serve --sandbox): X-API-TOKEN: {operator}")
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


def _size(text: str) -> int:
    value = int(text.replace("_", "").replace(",", ""))
    if not 0 <= value <= 100_000_000:
        raise argparse.ArgumentTypeError("a number of FRs from 0 to 100,000,000")
    return value


def register(commands: Any) -> None:
    load = commands.add_parser(
        "load",
        help="load fixture and JSON Lines files (idempotent upsert)",
        description=LOAD_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    load.add_argument("files", nargs="+", metavar="FILE", help="FILE.json or FILE.jsonl")
    database_flag(load)
    load.set_defaults(func=cmd_load)

    demo = commands.add_parser(
        "demo",
        help="seed realistic demo data and print tokens",
        description="Seed the small demo data set (24 FRs, the reference page's FR 221 and"
        " item 12312) and print fresh tokens. --size N adds N generated FRs over six"
        " accounts; the same N always gives the same data.",
    )
    demo.add_argument("--size", type=_size, metavar="N", help="also generate N FRs")
    demo.add_argument(
        "--jsonl",
        metavar="FILE.jsonl",
        help="write the N generated FRs to FILE.jsonl (and their accounts, sources and channels"
        " to FILE.accounts.json) for `frsync load`, instead of seeding the database",
    )
    database_flag(demo)
    demo.set_defaults(func=cmd_demo)
