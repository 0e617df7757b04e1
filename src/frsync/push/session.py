"""One `frsync push`: read and validate the file, consult the journal, send what is left."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from frsync.client import Client
from frsync.push.journal import (
    Journal,
    JournalError,
    JournalState,
    journal_path,
    load_state,
    lock_journal,
)
from frsync.push.pushfile import PushFile, read_push_file
from frsync.push.rows import PushRow
from frsync.push.runner import Outcome, PushResult, RowResult, StopReason, push_rows
from frsync.push.stopper import Stopper

__all__ = ["PushPlan", "dry_run", "execute", "plan_push"]


@dataclass(frozen=True, slots=True)
class PushPlan:
    """A validated file and what is left to send according to its journal."""

    file: PushFile
    journal_path: Path
    state: JournalState
    to_send: list[PushRow]
    already_done: list[PushRow]
    # Start the journal over: --force, or the last push of this path finished every row.
    fresh_journal: bool
    # The journal, locked before it was read (`plan_push(lock=True)`); `execute` takes it.
    locked: IO[str] | None = None

    def release(self) -> None:
        """Let go of the journal without pushing (safe to call more than once)."""
        if self.locked is not None:
            self.locked.close()

    @property
    def previously_completed(self) -> bool:
        """This very file (same bytes) was pushed completely before."""
        return self.state.completed_sha256 == self.file.sha256


def plan_push(path: Path, *, force: bool = False, lock: bool = False) -> PushPlan:
    """Read and validate `path` whole, then split its rows by the journal beside it.

    With `lock`, the journal is locked against a second push before it is read, so a plan
    never reports progress another push is making (release it, or `execute` the plan).
    Raises `InputError` (the file) or `JournalError` (the journal) before anything is sent.
    """
    push_file = read_push_file(path)
    journal = journal_path(path)
    locked = lock_journal(journal) if lock else None
    try:
        state = JournalState() if force else load_state(journal)
    except JournalError:
        if locked is not None:
            locked.close()
        raise
    to_send: list[PushRow] = []
    already_done: list[PushRow] = []
    for row in push_file.rows:
        (already_done if state.is_done(push_file.sha256, row) else to_send).append(row)
    return PushPlan(
        file=push_file,
        journal_path=journal,
        state=state,
        to_send=to_send,
        already_done=already_done,
        fresh_journal=force or state.completed_sha256 is not None,
        locked=locked,
    )


def dry_run(plan: PushPlan) -> PushResult:
    """What a push would do, sending nothing and writing no journal."""
    results = _skipped(plan) + [RowResult(row, Outcome.NOT_SENT) for row in plan.to_send]
    return PushResult(_in_file_order(results), StopReason.DRY_RUN)


def execute(
    plan: PushPlan,
    client: Client,
    *,
    stopper: Stopper,
    on_result: Callable[[RowResult], None] = lambda result: None,
) -> PushResult:
    """Send the rows left; mark the journal complete once every row of the file succeeded."""
    if plan.previously_completed and not plan.to_send:
        plan.release()
        return PushResult(_skipped(plan))
    journal = Journal(
        plan.journal_path, plan.file.sha256, fresh=plan.fresh_journal, locked=plan.locked
    )
    try:
        sent = push_rows(client, plan.to_send, journal, stopper=stopper, on_result=on_result)
        result = PushResult(_in_file_order(_skipped(plan) + sent.results), sent.stopped_by)
        if result.all_succeeded:
            journal.record_complete()
    finally:
        journal.close()
    return result


def _skipped(plan: PushPlan) -> list[RowResult]:
    return [RowResult(row, Outcome.SKIPPED) for row in plan.already_done]


def _in_file_order(results: list[RowResult]) -> list[RowResult]:
    return sorted(results, key=lambda result: result.row.line)
