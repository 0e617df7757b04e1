"""The push journal: which rows of a file are done, so a re-run sends only the rest.

It lives beside the input (`results.csv` → `results.csv.journal`), one JSON object per line,
appended and fsync'd after every row the API accepted, so a crash or Ctrl-C loses at most the
row in flight (which is then sent again: harmless, the PATCH is idempotent by value).

```
{"push": "<sha256 of the file>", "at": "2026-11-26T16:52:42Z"}                   a run starts
{"done": "<row key>", "line": 12, "fulfillmentRequestId": 221}               a row succeeded
{"complete": "<sha256 of the file>", "at": "2026-11-26T16:53:10Z"}    every row has succeeded
```

What a re-run skips (unless `--force`):
- after an unfinished push (a crash, Ctrl-C, a 401, or rows that failed): every row whose
  fulfillment request id and body are unchanged and already done. Rows you fixed, and rows
  that failed, are sent. Rows are known by content, not by line, so reordering is harmless.
- after a complete push of the same bytes: everything (there is nothing left to do).
- after a complete push of other content: nothing. That is a new file (tomorrow's export at
  the same path), and the journal starts over.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from frsync.client._errors import JournalError  # its home is the client's tree
from frsync.push.rows import PushRow

__all__ = ["Journal", "JournalError", "JournalState", "journal_path", "load_state", "lock_journal"]


def journal_path(input_path: Path) -> Path:
    return input_path.with_name(input_path.name + ".journal")


@dataclass(slots=True)
class JournalState:
    """What an earlier push of this path left behind."""

    done: set[str] = field(default_factory=set)  # keys of rows already accepted
    completed_sha256: str | None = None  # set when the last push finished every row
    completed_at: str | None = None

    def is_done(self, file_sha256: str, row: PushRow) -> bool:
        return self.completed_sha256 == file_sha256 or row.key in self.done


def load_state(path: Path) -> JournalState:
    """Read a journal; a missing one is an empty state. A torn last line is ignored."""
    try:
        lines = path.read_text(encoding="utf-8").split("\n")
    except FileNotFoundError:
        return JournalState()
    except (OSError, UnicodeDecodeError) as exc:
        message = f"cannot read the journal {path}: {exc}; use --force to replace it"
        raise JournalError(message) from exc
    state = JournalState()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            if number == len(lines):  # the write a crash interrupted
                break
            raise JournalError(
                f"the journal {path} is damaged at line {number}; use --force to replace it"
            ) from None
        _apply(state, record)
    return state


def _apply(state: JournalState, record: dict[str, Any]) -> None:
    if "done" in record:
        state.done.add(record["done"])
    elif "complete" in record:
        # Only what follows the last complete push counts towards the next one.
        state.done.clear()
        state.completed_sha256, state.completed_at = record["complete"], record.get("at")
    elif "push" in record and state.completed_sha256 not in (None, record["push"]):
        state.completed_sha256 = state.completed_at = None


class Journal:
    """The journal opened for appending during one push (locked against a second push)."""

    def __init__(
        self, path: Path, file_sha256: str, *, fresh: bool, locked: IO[str] | None = None
    ) -> None:
        """`locked`: the journal already opened by `lock_journal` (else it is locked here)."""
        self.path = path
        self._file_sha256 = file_sha256
        self._out = lock_journal(path) if locked is None else locked
        if fresh:  # only once locked: never cut the journal of a push still running
            self._out.truncate(0)
        self._append({"push": file_sha256, "at": _now()})

    def record_done(self, row: PushRow) -> None:
        """Remember that `row` succeeded, durably, before anything else is sent."""
        fr_id = row.fulfillment_request_id
        self._append({"done": row.key, "line": row.line, "fulfillmentRequestId": fr_id})

    def record_complete(self) -> None:
        self._append({"complete": self._file_sha256, "at": _now()})

    def close(self) -> None:
        self._out.close()

    def _append(self, record: dict[str, Any]) -> None:
        self._out.write(json.dumps(record, separators=(",", ":")) + "\n")
        self._out.flush()
        os.fsync(self._out.fileno())


def lock_journal(path: Path) -> IO[str]:
    """Open the journal for appending, refusing a second push of the same file at the same
    time: their journals would mix. Take it before reading the journal, so what a push says
    it resumes is what no other push is changing."""
    try:
        out = path.open("a", encoding="utf-8")
    except OSError as exc:
        raise JournalError(f"cannot write the journal {path}: {exc.strerror}") from exc
    _lock(out, path)
    return out


def _lock(out: IO[str], path: Path) -> None:
    if sys.platform == "win32":
        return
    import fcntl

    try:
        fcntl.flock(out.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        out.close()
        raise JournalError(f"another frsync push is using {path}") from None


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
