"""`frsync push | pending`: the connector's commands. Parse, call, print, exit code.

Exit codes: 0 every row succeeded (or, for `pending`, the listing is complete); 1 some rows
failed or were not sent (see the summary and `--report`); 2 usage, file or journal error, or
the token was refused (401), which no re-run with the same command can fix.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
from rich.console import Console
from rich.markup import escape

from frsync.cli.common import OK, SOME_FAILED, USAGE
from frsync.client import (
    BASE_URL_VARIABLE,
    DEFAULT_BASE_URL,
    APIConnectionError,
    Client,
    ClientStats,
    FrsyncError,
    RetryPolicy,
    UnauthorizedError,
    base_url_from_env,
)
from frsync.push.display import failure_lines, progress_bar, retry_notice, summary_table
from frsync.push.journal import JournalError
from frsync.push.pending import FORMATS, write_pending
from frsync.push.report import input_error_report, push_report, write_report
from frsync.push.rows import InputError
from frsync.push.runner import PushResult, StopReason
from frsync.push.session import PushPlan, dry_run, execute, plan_push
from frsync.push.stopper import Stopper

__all__ = ["register"]

_MAX_INPUT_MESSAGES = 50
# A refused first connection is far more often a wrong URL than an outage: give up on a URL
# that has never answered within 15 s (10 s of retries, one last connection attempt of at most
# 4 s, and starting Python); once it has, ride out outages with the full policy.
_RETRY = RetryPolicy(unreached_patience=10.0)
_TIMEOUT = httpx.Timeout(30.0, connect=4.0)
GIVE_UP_WITHIN = 15.0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `push` and `pending` to the `frsync` command line."""
    push = subparsers.add_parser(
        "push",
        help="send accounting-sync results from a CSV or JSON Lines file",
        description="Validate FILE whole, then PATCH each row's accounting-sync fields. "
        "A journal beside FILE lets a re-run send only what has not succeeded.",
    )
    push.add_argument("file", type=Path, metavar="FILE.(csv|jsonl)")
    _add_connection_options(push)
    push.add_argument("--report", type=Path, metavar="R.json", help="write every row's outcome")
    push.add_argument("--dry-run", action="store_true", help="validate only; send nothing")
    push.add_argument("--force", action="store_true", help="resend rows the journal has done")
    push.set_defaults(func=run_push)

    pending = subparsers.add_parser(
        "pending",
        help="list fulfillment requests not yet synced, in a shape push reads back",
        description="Every fulfillment request in the token's scope not yet synced "
        "(accountingSynced false or null), streamed page by page.",
    )
    _add_connection_options(pending)
    pending.add_argument("--errors", action="store_true", help="those with an accountingError")
    pending.add_argument("--format", choices=FORMATS, default="table")
    pending.set_defaults(func=run_pending)


def _add_connection_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--token", help="API token (default: $FRSYNC_TOKEN)")
    parser.add_argument(
        "--base-url",
        help=f"API base URL (default: ${BASE_URL_VARIABLE}, else a local frsync serve at"
        f" {DEFAULT_BASE_URL}; the real API is https://api.flxpoint.com)",
    )


def _consoles() -> tuple[Console, Console]:
    """stdout for results, stderr for progress and messages; messages never wrapped mid-line."""
    return Console(highlight=False), Console(stderr=True, highlight=False, soft_wrap=True)


def _error(err: Console, message: object) -> None:
    err.print(f"[red]error:[/] {escape(str(message))}")


def _retrying(err: Console) -> Callable[[FrsyncError, float], None]:
    """Say each retry as it is decided: what failed, where, and the wait."""

    def say(error: FrsyncError, seconds: float) -> None:
        err.print(f"[yellow]{escape(retry_notice(error, seconds))}")

    return say


def _never_answered(err: Console, base_url: str) -> None:
    err.print(
        f"nothing has answered at {escape(base_url)} yet: a refused first connection is far"
        f" more often a wrong --base-url (or ${BASE_URL_VARIABLE}) than an outage"
    )


def _token(args: argparse.Namespace, err: Console) -> str | None:
    token: str | None = args.token or os.environ.get("FRSYNC_TOKEN")
    if not token:
        _error(err, "a token is required: --token T or FRSYNC_TOKEN")
    return token


def _base_url(args: argparse.Namespace) -> str:
    base_url: str = args.base_url or base_url_from_env()
    return base_url


# push ------------------------------------------------------------------------------------


def run_push(args: argparse.Namespace) -> int:
    out, err = _consoles()
    started_at = datetime.now(UTC)
    plan = _plan(args, err)
    if plan is None:
        return USAGE
    try:
        outcome = (dry_run(plan), ClientStats()) if args.dry_run else _push(args, plan, err)
    finally:
        plan.release()
    if isinstance(outcome, int):
        return outcome
    result, stats = outcome
    for line in failure_lines(plan, result):
        err.print(line, markup=False)
    out.print(summary_table(plan, result, stats))
    if args.report is not None:
        base_url = _base_url(args)
        report = push_report(plan, result, base_url=base_url, started_at=started_at, stats=stats)
        write_report(args.report, report)
    return _push_exit_code(result)


def _push(
    args: argparse.Namespace, plan: PushPlan, err: Console
) -> tuple[PushResult, ClientStats] | int:
    """Send the plan; or the exit code when it cannot run to its end."""
    token = _token(args, err)
    if token is None:
        return USAGE
    try:
        return _send(plan, token, _base_url(args), err)
    except JournalError as error:
        _error(err, error)
        return USAGE
    except KeyboardInterrupt:  # the second Ctrl-C: every success is already journaled
        _error(err, "interrupted; run the same command again to send the rest")
        return SOME_FAILED


def _plan(args: argparse.Namespace, err: Console) -> PushPlan | None:
    """The validated file and its journal, or None after saying what is wrong."""
    try:
        plan = plan_push(args.file, force=args.force, lock=not args.dry_run)
    except InputError as error:
        messages = error.messages()
        for message in messages[:_MAX_INPUT_MESSAGES]:
            err.print(message, markup=False)
        if len(messages) > _MAX_INPUT_MESSAGES:
            err.print(f"… and {len(messages) - _MAX_INPUT_MESSAGES} more problems")
        where = escape(str(args.file))
        err.print(f"[red]nothing was sent:[/] {len(messages)} problem(s) in {where}")
        if args.report is not None:
            write_report(args.report, input_error_report(args.file, messages))
        return None
    except JournalError as error:
        _error(err, error)
        return None
    _announce(plan, err)
    return plan


def _announce(plan: PushPlan, err: Console) -> None:
    done, total = len(plan.already_done), len(plan.file.rows)
    if plan.previously_completed:
        message = (
            f"every row of {plan.file.path} was pushed at {plan.state.completed_at};"
            " nothing to send (--force sends it again)"
        )
    elif done:
        message = (
            f"resuming: {done} of {total} rows are already done per {plan.journal_path}"
            " (--force resends them)"
        )
    else:
        return
    err.print(message, markup=False)


def _send(
    plan: PushPlan, token: str, base_url: str, err: Console
) -> tuple[PushResult, ClientStats]:
    stopper = Stopper()

    def notice() -> None:
        err.print("[yellow]stopping after the request in flight… (Ctrl-C again to quit now)")

    client = Client(
        token,
        base_url=base_url,
        timeout=_TIMEOUT,
        retry=_RETRY,
        sleep=stopper.sleep,
        on_retry=_retrying(err),
    )
    with (
        client,
        stopper.stop_on_sigint(notice),
        progress_bar(err, len(plan.to_send), client) as advance,
    ):
        result = execute(plan, client, stopper=stopper, on_result=advance)
    if result.stopped_by is StopReason.CONNECTION_ERROR and not client.answered:
        _never_answered(err, base_url)
    return result, client.stats


def _push_exit_code(result: PushResult) -> int:
    if result.stopped_by is StopReason.UNAUTHORIZED:
        return USAGE
    if result.stopped_by is StopReason.DRY_RUN:
        return OK
    return OK if result.all_succeeded else SOME_FAILED


# pending ---------------------------------------------------------------------------------


def run_pending(args: argparse.Namespace) -> int:
    out, err = _consoles()
    token = _token(args, err)
    if token is None:
        return USAGE
    base_url = _base_url(args)
    client = Client(
        token, base_url=base_url, timeout=_TIMEOUT, retry=_RETRY, on_retry=_retrying(err)
    )
    try:
        with client:
            count = write_pending(
                client, errors=args.errors, output_format=args.format, out=sys.stdout, console=out
            )
    except UnauthorizedError as error:
        _error(err, error)
        return USAGE
    except FrsyncError as error:
        _error(err, error)
        if isinstance(error, APIConnectionError) and not client.answered:
            _never_answered(err, base_url)
        return SOME_FAILED
    except KeyboardInterrupt:
        _error(err, "interrupted; the listing is incomplete")
        return SOME_FAILED
    except BrokenPipeError:
        # The reader (`| head`) has gone: stop quietly, and keep Python's exit-time flush quiet.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return OK
    what = "with an accounting error" if args.errors else "not yet synced"
    err.print(f"{count} fulfillment request(s) {what}")
    return OK
