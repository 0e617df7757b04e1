"""Helpers shared by the command-line tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from frsync.cli import main
from tests.support import TOKENS

HEADER = "fulfillmentRequestId,accountingSynced,externalAccountingId,accountingError,items\n"
TOKEN = TOKENS["account1"]


def run_cli(*argv: str | Path) -> int:
    """Run `frsync ARGV…` in-process and return its exit code."""
    with pytest.raises(SystemExit) as exit_info:
        main([str(arg) for arg in argv])
    code = exit_info.value.code
    assert isinstance(code, int)
    return code


def write_csv(tmp_path: Path, *rows: str, name: str = "results.csv") -> Path:
    path = tmp_path / name
    path.write_text(HEADER + "".join(f"{row}\n" for row in rows), encoding="utf-8")
    return path
