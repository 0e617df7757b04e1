"""The progress bar of `frsync load` and `frsync demo --size`: FRs per second and an ETA.

The bar measures what is known in advance (bytes of the JSON Lines files, or FRs to
generate), so the ETA holds however long the lines are; the rate is always in FRs. Only a
terminal gets the live bar: piped or redirected output stays plain text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

Advance = Callable[[int, int], None]  # (units of the total done, FRs done) since last call


class FrRateColumn(ProgressColumn):
    """FRs written so far and FRs per second since the start."""

    def render(self, task: Task) -> Text:
        frs = int(task.fields.get("frs", 0))
        elapsed = task.finished_time if task.finished else task.elapsed
        rate = f"{frs / elapsed:>6,.0f} FRs/s" if elapsed else "    -- FRs/s"
        return Text(f"{frs:>9,} FRs {rate}", style="cyan")


@contextmanager
def progress_bar(console: Console, label: str, total: int) -> Iterator[Advance]:
    """A live bar towards `total`; yields the function that moves it on."""
    columns = (
        TextColumn(f"[bold]{label}"),
        BarColumn(bar_width=16),  # all columns fit an 80-column terminal
        TaskProgressColumn(),
        FrRateColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        TimeElapsedColumn(),
    )
    disable = not console.is_terminal or total <= 0
    with Progress(*columns, console=console, disable=disable, transient=False) as progress:
        task = progress.add_task(label, total=total, frs=0)
        frs = 0

        def advance(done: int, more_frs: int) -> None:
            nonlocal frs
            frs += more_frs
            progress.update(task, advance=done, frs=frs)

        yield advance
        progress.update(task, completed=total)
