"""SIGTERM with 50 slow requests in flight on a 2-worker `frsync serve`: those that can finish
in the grace period do, the rest are answered 503 and leave nothing, the exit is bounded."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults.shutdown import FAST_AT, GRACE, IN_FLIGHT, LOCKED, ShutdownResult, run_shutdown


def _assert_clean(result: ShutdownResult, cut_off: int) -> None:
    assert len(result.outcomes) == IN_FLIGHT
    assert result.statuses("fast") == {"204": IN_FLIGHT - cut_off}, result.statuses("fast")
    # The fast ones were not held back until the end of the grace period.
    assert result.answered_at("fast")[1] < FAST_AT + 1.0, result.answered_at("fast")
    for group in ("slow", "locked"):
        assert set(result.statuses(group)) <= {"503"}, result.statuses(group)
        if result.statuses(group):
            assert result.answered_at(group)[0] >= GRACE, result.answered_at(group)
    assert (result.present, result.missing) == (IN_FLIGHT - cut_off, 0), result
    assert (result.rolled_back, result.leaked) == (cut_off, 0), result
    assert result.server_errors == 0 and result.unhandled == 0, result
    assert result.exit_code == 0 and result.workers_left == 0, result
    assert result.exit_seconds <= result.bound, result.exit_seconds
    assert result.ok


def test_sigterm_on_sqlite_finishes_what_it_can_and_leaves_nothing_of_the_rest(
    tmp_path: Path,
) -> None:
    result = run_shutdown("sqlite", tmp_path)
    _assert_clean(result, cut_off=IN_FLIGHT // 2)


@pytest.mark.postgres
@pytest.mark.usefixtures("needs_postgres")
def test_sigterm_on_postgres_rolls_back_transactions_it_cuts_off(tmp_path: Path) -> None:
    result = run_shutdown("postgres", tmp_path)
    trickling = IN_FLIGHT - LOCKED
    _assert_clean(result, cut_off=trickling - trickling // 2 + LOCKED)
    assert result.statuses("locked") == {"503": LOCKED}
