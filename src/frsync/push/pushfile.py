"""A push file read whole and validated: its rows, or every problem found, with line numbers."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from frsync.push import csv_format, jsonl_format
from frsync.push.rows import InputError, PushRow, row_keys

__all__ = ["PushFile", "read_push_file"]

_PARSERS = {".csv": csv_format.parse, ".jsonl": jsonl_format.parse, ".ndjson": jsonl_format.parse}


@dataclass(frozen=True, slots=True)
class PushFile:
    path: Path
    sha256: str  # of the file's bytes: how the journal recognises a file pushed before
    rows: list[PushRow]


def read_push_file(path: Path) -> PushFile:
    """Read and validate the whole file; raise `InputError` listing every problem."""
    parse = _PARSERS.get(path.suffix.lower())
    if parse is None:
        raise InputError(path, [(None, "cannot tell the format: name the file .csv or .jsonl")])
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(path, [(None, f"cannot read the file: {exc.strerror}")]) from exc
    rows, problems = parse(_decode_utf8(path, data))
    if problems:
        raise InputError(path, problems)
    return PushFile(path=path, sha256=hashlib.sha256(data).hexdigest(), rows=row_keys(rows))


def _decode_utf8(path: Path, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")  # tolerate the BOM spreadsheet programs write
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputError(path, [(line, "is not valid UTF-8")]) from exc
