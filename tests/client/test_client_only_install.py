"""The integrator's side runs on the base install: it never imports the server's code."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import frsync

SERVER_SIDE = ("starlette", "sqlalchemy", "uvicorn", "alembic", "asyncpg", "redis",
               "frsync.api", "frsync.store", "frsync.ratelimit", "frsync.domain")  # fmt: skip


def test_client_push_and_connector_cli_import_nothing_from_the_server() -> None:
    code = (
        "import sys, frsync.client, frsync.push.session, frsync.push.pending, "
        "frsync.push.report, frsync.push.display, frsync.cli.connector; "
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {SERVER_SIDE!r} "
        f"or m.startswith({SERVER_SIDE!r})))"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(frsync.__file__).parents[1])}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                            text=True, check=True)  # fmt: skip
    assert result.stdout.strip() == "[]"
