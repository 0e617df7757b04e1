"""Syncs per hour as an SVG bar chart, laid out here and drawn by the template: no
JavaScript and nothing fetched, so it renders wherever the page does."""

from __future__ import annotations

from dataclasses import dataclass

from frsync.console.store import HourCount
from frsync.models import format_ms

WIDTH, HEIGHT = 960, 220
LEFT, RIGHT, TOP, BOTTOM = 48, 8, 12, 28  # room for the axis labels
_HOUR_MS = 3_600_000


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    width: float
    synced_y: float
    synced_height: float
    failed_y: float
    failed_height: float
    label: str | None  # the hour under every third bar, "14:00"
    title: str  # the tooltip: "14:00–15:00 UTC: 120 synced, 4 failed"


@dataclass(frozen=True, slots=True)
class Chart:
    width: int
    height: int
    bars: list[Bar]
    top: int  # the value of the top grid line
    grid: list[tuple[float, int]]  # (y, value) of each horizontal grid line
    baseline: float
    total_synced: int
    total_failed: int


def _nice_top(value: int) -> int:
    """The top of the axis: the first of 4, 8, 20, 40, 80, 100, 200, 400, 800, 1000, … that
    is at least `value`, so the four grid steps are whole numbers."""
    scale = 1
    while True:
        for mantissa in (1, 2, 4, 8):
            top = mantissa * scale
            if top >= max(value, 4) and top % 4 == 0:
                return top
        scale *= 10


def layout(hours: list[HourCount]) -> Chart:
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    top = _nice_top(max((h.synced + h.failed for h in hours), default=0))
    slot = plot_w / max(len(hours), 1)
    baseline = TOP + plot_h
    bars = []
    for index, hour in enumerate(hours):
        synced_h = plot_h * hour.synced / top
        failed_h = plot_h * hour.failed / top
        start = format_ms(hour.hour * _HOUR_MS)[11:16]
        end = format_ms((hour.hour + 1) * _HOUR_MS)[11:16]
        bars.append(
            Bar(
                x=LEFT + index * slot + 2,
                width=max(slot - 4, 1),
                synced_y=baseline - synced_h,
                synced_height=synced_h,
                failed_y=baseline - synced_h - failed_h,
                failed_height=failed_h,
                # Every third hour, counted back from the current one so that it is labelled.
                label=start if (len(hours) - 1 - index) % 3 == 0 else None,
                title=f"{start}–{end} UTC: {hour.synced:,} synced, {hour.failed:,} failed",
            )
        )
    grid = [(baseline - plot_h * step / 4, top * step // 4) for step in range(5)]
    return Chart(
        WIDTH,
        HEIGHT,
        bars,
        top,
        grid,
        baseline,
        sum(h.synced for h in hours),
        sum(h.failed for h in hours),
    )
