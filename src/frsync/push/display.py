"""What `frsync push` shows: a progress bar with rate and ETA, retry notices, then a summary."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from frsync.client import APIConnectionError, APIStatusError, Client, ClientStats, FrsyncError
from frsync.push.runner import Outcome, PushResult, RowResult, StopReason
from frsync.push.session import PushPlan

__all__ = ["failure_lines", "paced_eta", "progress_bar", "retry_notice", "summary_table"]

_STOP_NOTES = {
    StopReason.INTERRUPTED: "stopped by Ctrl-C; run the same command again to send the rest",
    StopReason.UNAUTHORIZED: "stopped: the token was refused (401); nothing else was sent",
    StopReason.CONNECTION_ERROR: "stopped: the API could not be reached; run again to resume",
    StopReason.DRY_RUN: "dry run: the file is valid; nothing was sent",
}


class RateColumn(ProgressColumn):
    """Rows per second over the last half minute."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("  -- rows/s" if speed is None else f"{speed:5.2f} rows/s", style="cyan")


class RateLimitedColumn(ProgressColumn):
    """429s met so far, read live: explains a bar that stalls behind another user of the token."""

    def __init__(self, stats: ClientStats) -> None:
        super().__init__()
        self._stats = stats

    def render(self, task: Task) -> Text:
        count = self._stats.rate_limited
        return Text(f"{count} × 429" if count else "", style="yellow")


class PacedEtaColumn(ProgressColumn):
    """Time left as `paced_eta` last estimated it, counting down between rows."""

    def render(self, task: Task) -> Text:
        estimate: tuple[float, float] | None = task.fields.get("eta")
        if estimate is None:
            return Text("-:--:--", style="cyan")
        seconds, at = estimate
        left = max(0, round(seconds - (time.monotonic() - at)))
        return Text(f"{left // 3600}:{left % 3600 // 60:02}:{left % 60:02}", style="cyan")


def paced_eta(rows_left: int, *, level: float, rate: float, seconds_per_row: float) -> float:
    """Seconds to send `rows_left` more rows: no sooner than the token's bucket lets them go
    (`level` requests now, then `rate` a second) nor than rows have gone so far when the
    bucket did not hold them back. A rate averaged over the first burst would promise 1 s
    for 13 rows that the 2 req/s limit spreads over 6.5."""
    if rows_left <= 0:
        return 0.0
    paced = max(0.0, rows_left - level) / rate
    return max(paced, rows_left * seconds_per_row)


@contextmanager
def progress_bar(
    console: Console, total: int, client: Client
) -> Iterator[Callable[[RowResult], None]]:
    """A live bar for `total` rows; yields the callback that advances it by one result."""
    columns = (
        TextColumn("[bold]pushing"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TextColumn("ETA"),
        PacedEtaColumn(),
        TimeElapsedColumn(),
        RateLimitedColumn(client.stats),
    )
    started, done = time.monotonic(), 0
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("push", total=total)

        def advance(result: RowResult) -> None:
            nonlocal done
            if result.outcome not in (Outcome.OK, Outcome.FAILED):  # rows not sent do not count
                return
            done += 1
            now = time.monotonic()
            eta = _estimate(client, total - done, (now - started) / done)
            progress.update(task, advance=1, eta=(eta, now))

        yield advance


def _estimate(client: Client, rows_left: int, seconds_per_row: float) -> float:
    """`paced_eta` from the client's bucket; read here, on the thread that sends, not in the
    display's refresh thread (reading the bucket refills it)."""
    bucket = client.bucket
    if bucket is None:
        return rows_left * seconds_per_row
    stats = client.stats
    unpaced = max(0.0, seconds_per_row - stats.seconds_paced / max(1, stats.requests))
    return paced_eta(rows_left, level=bucket.level, rate=bucket.rate, seconds_per_row=unpaced)


def retry_notice(error: FrsyncError, seconds: float) -> str:
    """What a push waits for while it looks idle: "retrying in 4 s: connection refused"."""
    wait = f"{seconds:.0f} s" if seconds >= 0.95 else f"{seconds:.1f} s"
    return f"retrying in {wait}: {_why(error)}"


def _why(error: FrsyncError) -> str:
    if isinstance(error, APIStatusError):
        title = error.problem.title if error.problem is not None else None
        return f"{error.status} {title or error.message}".strip()
    if isinstance(error, APIConnectionError):
        at = f" at {error.url}" if error.url else ""
        kind, _, text = (error.reason or error.message).partition(": ")
        if not text:  # httpx says nothing more for its timeouts
            return _QUIET_FAILURES.get(kind, kind) + at
        text = re.sub(r"\[Errno -?\d+\] ", "", text)  # "[Errno 111] Connection refused"
        return text[:1].lower() + text[1:] + at
    return error.message


_QUIET_FAILURES = {
    "ConnectTimeout": "no connection in time",
    "ReadTimeout": "no answer in time",
    "WriteTimeout": "could not send in time",
    "PoolTimeout": "no connection in time",
    "RemoteProtocolError": "the connection closed without an answer",
}


def summary_table(plan: PushPlan, result: PushResult, stats: ClientStats) -> Table:
    """Sent, ok, failed by reason, skipped and not sent, with the 429s met on the way."""
    table = Table(title=f"frsync push {plan.file.path.name}", show_header=False)
    table.add_column("what")
    table.add_column("rows", justify="right")
    table.add_row("rows in file", str(len(result.results)))
    table.add_row("already done (journal)", str(result.count(Outcome.SKIPPED)))
    table.add_row("sent", str(result.count(Outcome.OK) + result.count(Outcome.FAILED)))
    table.add_row("[green]ok", str(result.count(Outcome.OK)))
    table.add_row("[red]failed", str(result.count(Outcome.FAILED)))
    for reason, count in sorted(result.failed_by_reason().items()):
        table.add_row(f"  [red]{reason.replace('_', ' ')}", str(count))
    table.add_row("not sent", str(result.count(Outcome.NOT_SENT)))
    table.add_row("429s met / retries", f"{stats.rate_limited} / {stats.retries}")
    if result.stopped_by is not None:
        table.caption = _STOP_NOTES[result.stopped_by]
    return table


def failure_lines(plan: PushPlan, result: PushResult, limit: int = 20) -> list[str]:
    """The first failures, one line each, with the file line and what the API said."""
    failures = [r for r in result.results if r.outcome is Outcome.FAILED]
    lines = [_failure_line(plan, failure) for failure in failures[:limit]]
    if len(failures) > limit:
        lines.append(f"… and {len(failures) - limit} more (see --report)")
    return lines


def _failure_line(plan: PushPlan, failure: RowResult) -> str:
    where = f"{plan.file.path.name}, line {failure.row.line}"
    fields = "; ".join(f"{e.field}: {e.message}" for e in failure.field_errors)
    detail = failure.message or ""
    if fields and fields not in detail:
        detail = f"{detail} ({fields})" if detail else fields
    status = f" {failure.status}" if failure.status else ""
    return f"{where}: fulfillment request {failure.row.fulfillment_request_id}:{status} {detail}"
