"""The event-loop lag sampler on a fake clock: each wakeup recorded by how late it came."""

from __future__ import annotations

import pytest

from frsync.api.loop_lag import LoopLag


class _Stop(Exception):
    """Ends the sampler once the scripted wakeups are spent."""


async def test_each_wakeup_is_counted_in_the_bucket_of_how_late_it_came() -> None:
    now = 100.0
    late_by = [0.0, 0.0015, 0.003, 0.04]  # seconds past the asked interval

    async def sleep(seconds: float) -> None:
        nonlocal now
        if not late_by:
            raise _Stop
        now += seconds + late_by.pop(0)

    lag = LoopLag()
    with pytest.raises(_Stop):
        await lag.sample_every(0.001, clock=lambda: now, sleep=sleep)
    # Buckets: ≤ 1, 2, 5, 10, 25, 100 ms, and over.
    assert lag.counts == [1, 1, 1, 0, 0, 1, 0]
    assert lag.longest == pytest.approx(0.04)
    assert lag.total == pytest.approx(0.0445)


def test_workers_samples_add_up_and_the_longest_is_the_longest_of_all() -> None:
    first, second = LoopLag(), LoopLag()
    first.record(0.0005)
    first.record(0.003)
    second.record(0.012)
    both = first.plus(second)
    assert sum(both.counts) == 3
    assert both.longest == 0.012
    assert both.total == pytest.approx(0.0155)
    assert sum(first.counts) == 2  # the parts stay as they were
