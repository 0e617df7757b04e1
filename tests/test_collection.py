"""`-m "not postgres"` (and `-m "not redis"`) leave those cases out when the suite is collected,
so a machine without the servers runs what it can and nothing else."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


def collected(marker_expression: str) -> list[str]:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--collect-only",
            "-q",
            "-p",
            "no:cacheprovider",
            "-m",
            marker_expression,
            "tests",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return [line for line in result.stdout.splitlines() if "::" in line]


@pytest.mark.slow  # a subprocess collects or imports the whole project
def test_a_run_without_the_database_server_collects_none_of_its_cases() -> None:
    ids = collected("not postgres")
    assert ids, "nothing collected"
    assert [i for i in ids if "postgres" in i.lower()] == []
    assert any("[sqlite]" in i for i in ids)
