"""The push journal: what a re-run skips after an unfinished, a complete, or an edited push."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from frsync.push.journal import Journal, JournalError, journal_path, load_state
from frsync.push.session import plan_push

HEADER = "fulfillmentRequestId,accountingSynced,externalAccountingId,accountingError,items\n"
ROWS = ["221,true,QB-1,,\n", "222,true,QB-2,,\n", "223,true,QB-3,,\n"]


def push_file(tmp_path: Path, rows: list[str]) -> Path:
    path = tmp_path / "results.csv"
    path.write_text(HEADER + "".join(rows), encoding="utf-8")
    return path


def mark_done(path: Path, count: int, *, complete: bool = False) -> None:
    plan = plan_push(path)
    journal = Journal(plan.journal_path, plan.file.sha256, fresh=plan.fresh_journal)
    for row in plan.to_send[:count]:
        journal.record_done(row)
    if complete:
        journal.record_complete()
    journal.close()


def sent_lines(path: Path, *, force: bool = False) -> list[int]:
    return [row.line for row in plan_push(path, force=force).to_send]


def test_journal_sits_beside_the_input(tmp_path: Path) -> None:
    assert journal_path(tmp_path / "r.csv") == tmp_path / "r.csv.journal"


def test_unfinished_push_resumes_with_what_is_left(tmp_path: Path) -> None:
    path = push_file(tmp_path, ROWS)
    mark_done(path, 2)
    assert sent_lines(path) == [4]
    assert sent_lines(path, force=True) == [2, 3, 4]


def test_fixing_a_row_sends_that_row_and_keeps_the_rest_done(tmp_path: Path) -> None:
    path = push_file(tmp_path, ROWS)
    mark_done(path, 2)
    push_file(tmp_path, ["221,true,QB-1,,\n", "222,true,QB-2-fixed,,\n", "223,true,QB-3,,\n"])
    assert sent_lines(path) == [3, 4]


def test_complete_push_of_the_same_bytes_leaves_nothing(tmp_path: Path) -> None:
    path = push_file(tmp_path, ROWS)
    mark_done(path, 3, complete=True)
    plan = plan_push(path)
    assert plan.previously_completed
    assert plan.to_send == []


def test_new_content_after_a_complete_push_is_sent_whole(tmp_path: Path) -> None:
    path = push_file(tmp_path, ROWS)
    mark_done(path, 3, complete=True)
    push_file(tmp_path, [*ROWS, "224,true,QB-4,,\n"])  # tomorrow's export, same path
    plan = plan_push(path)
    assert [row.line for row in plan.to_send] == [2, 3, 4, 5]
    assert plan.fresh_journal


def test_torn_last_line_is_ignored(tmp_path: Path) -> None:
    path = push_file(tmp_path, ROWS)
    mark_done(path, 1)
    with journal_path(path).open("a") as journal:
        journal.write('{"done": "abc')  # the write a crash cut short
    assert sent_lines(path) == [3, 4]


def test_damaged_journal_is_an_error_that_force_overrides(tmp_path: Path) -> None:
    path = push_file(tmp_path, ROWS)
    journal_path(path).write_text("garbage\n{}\n")
    with pytest.raises(JournalError, match="damaged at line 1"):
        plan_push(path)
    assert sent_lines(path, force=True) == [2, 3, 4]


def test_second_push_of_the_same_file_is_locked_out(tmp_path: Path) -> None:
    path = push_file(tmp_path, ROWS)
    first = Journal(journal_path(path), "sha", fresh=False)
    try:
        with pytest.raises(JournalError, match="another frsync push"):
            Journal(journal_path(path), "sha", fresh=True)
    finally:
        first.close()
    assert journal_path(path).read_text().count('"push"') == 1  # not truncated by the loser


def test_every_success_is_on_disk_before_the_next_row(tmp_path: Path) -> None:
    path = push_file(tmp_path, ROWS)
    plan = plan_push(path)
    journal = Journal(plan.journal_path, plan.file.sha256, fresh=False)
    journal.record_done(plan.to_send[0])
    records = [json.loads(line) for line in plan.journal_path.read_text().splitlines()]
    journal.close()
    assert records[-1] == {"done": plan.to_send[0].key, "line": 2, "fulfillmentRequestId": 221}


def test_missing_journal_is_an_empty_state(tmp_path: Path) -> None:
    state = load_state(tmp_path / "none.journal")
    assert state.done == set()
    assert state.completed_sha256 is None
