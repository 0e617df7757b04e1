"""What `frsync push` shows: a progress bar with rate and ETA, then a summary table."""

from __future__ import annotations

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
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from frsync.client import ClientStats
from frsync.push.runner import Outcome, PushResult, RowResult, StopReason
from frsync.push.session import PushPlan

__all__ = ["failure_lines", "progress_bar", "summary_table"]

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


@contextmanager
def progress_bar(
    console: Console, total: int, stats: ClientStats
) -> Iterator[Callable[[RowResult], None]]:
    """A live bar for `total` rows; yields the callback that advances it by one result."""
    columns = (
        TextColumn("[bold]pushing"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        TimeElapsedColumn(),
        RateLimitedColumn(stats),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("push", total=total)

        def advance(result: RowResult) -> None:
            if result.outcome in (Outcome.OK, Outcome.FAILED):  # rows not sent do not count
                progress.advance(task)

        yield advance


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
