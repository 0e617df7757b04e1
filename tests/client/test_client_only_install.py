"""The integrator's side runs on the base install: it never imports the server's code, and the
server's commands say how to get them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import frsync

SERVER_SIDE = (
    "starlette",
    "sqlalchemy",
    "uvicorn",
    "alembic",
    "asyncpg",
    "redis",
    "frsync.api",
    "frsync.store",
    "frsync.ratelimit",
    "frsync.domain",
)
ENV = {**os.environ, "PYTHONPATH": str(Path(frsync.__file__).parents[1])}

# `pip install frsync` without the extra, played by refusing to import its dependencies.
WITHOUT_SERVER_EXTRA = """
import sys
from importlib.abc import MetaPathFinder

class NotInstalled(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"starlette", "uvicorn", "sqlalchemy", "alembic", "asyncpg",
                                  "redis", "uvloop", "httptools"}:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, NotInstalled())
from frsync.cli import main
main(sys.argv[1:])
"""


def test_client_push_and_connector_cli_import_nothing_from_the_server() -> None:
    code = (
        "import sys, frsync.client, frsync.push.session, frsync.push.pending, "
        "frsync.push.report, frsync.push.display, frsync.cli.connector; "
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {SERVER_SIDE!r} "
        f"or m.startswith({SERVER_SIDE!r})))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], env=ENV, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize(
    "argv",
    [
        ["serve"],
        ["serve", "--port", "9000", "--sandbox"],
        ["load", "fixture.json"],
        ["demo", "--size", "10"],
        ["token", "create", "--type", "operator"],
    ],
)
def test_server_commands_without_the_extra_say_how_to_install_it(argv: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_SERVER_EXTRA, *argv],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert f"frsync {argv[0]} needs the server extra" in result.stderr
    assert "pip install 'frsync[server]'" in result.stderr
    assert "invalid choice" not in result.stderr
    assert "Traceback" not in result.stderr


def test_client_commands_work_without_the_extra() -> None:
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_SERVER_EXTRA, "push", "--help"],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "FRSYNC_BASE_URL" in result.stdout
