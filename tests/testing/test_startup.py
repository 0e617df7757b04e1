"""What makes `Sandbox()` fast, each part on its own: readiness polled with a short backoff (no
fixed sleep), the template database built once and copied, `serve` skipping Alembic when the
schema is at head, and its lean entry behaving like `frsync serve`."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from frsync.store import migrate
from frsync.store.upgrade import alembic_config, head_revision, is_at_head, upgrade
from frsync.testing import Sandbox, SandboxError
from frsync.testing._server import FIRST_POLL, LAST_POLL, wait_until
from frsync.testing._template import template, template_key


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _never_exits() -> None:
    return None


def test_readiness_is_probed_at_once_then_with_a_growing_short_backoff() -> None:
    answers = iter([False, False, False, True])
    fake = FakeTime()
    wait_until(lambda: next(answers), _never_exits, timeout=60, clock=fake.clock, sleep=fake.sleep)
    assert fake.sleeps == pytest.approx([FIRST_POLL, FIRST_POLL * 1.5, FIRST_POLL * 2.25])
    assert FIRST_POLL <= 0.002  # a server up 2 ms after the spawn is not kept waiting


def test_ready_at_the_first_probe_waits_nothing() -> None:
    fake = FakeTime()
    wait_until(lambda: True, _never_exits, timeout=60, clock=fake.clock, sleep=fake.sleep)
    assert fake.sleeps == []


def test_readiness_backoff_is_capped_and_gives_up_at_the_deadline() -> None:
    fake = FakeTime()
    with pytest.raises(SandboxError, match="did not answer within 5 s"):
        wait_until(lambda: False, _never_exits, timeout=5, clock=fake.clock, sleep=fake.sleep)
    assert max(fake.sleeps) == LAST_POLL
    assert fake.now == pytest.approx(5, abs=LAST_POLL)


def test_a_server_that_exits_stops_the_wait_at_once() -> None:
    def exited() -> None:
        raise SandboxError("frsync serve --sandbox exited")

    fake = FakeTime()
    with pytest.raises(SandboxError, match="exited"):
        wait_until(lambda: False, exited, timeout=60, clock=fake.clock, sleep=fake.sleep)
    assert fake.sleeps == []


# -- serve skips Alembic at head ------------------------------------------------------------


def test_head_read_from_the_revision_files_is_alembics_head() -> None:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config("sqlite:///unused.db"))
    assert head_revision() == script.get_current_head()


def test_only_a_database_at_head_is_known_to_be_at_head(tmp_path: Path) -> None:
    from alembic import command

    url = f"sqlite:///{tmp_path / 'old.db'}"
    assert not is_at_head(url)  # no file yet: Alembic creates it
    command.upgrade(alembic_config(url), "0002")
    assert not is_at_head(url)
    upgrade(url)
    assert is_at_head(url)
    (tmp_path / "junk.db").write_bytes(b"not a database")
    assert not is_at_head(f"sqlite:///{tmp_path / 'junk.db'}")
    assert not is_at_head("postgresql://nobody@127.0.0.1:1/none")  # Alembic decides there


def test_serve_at_head_does_not_import_alembic_or_sqlalchemy(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'f.db'}"
    migrate(url)
    code = (
        "import sys\n"
        "from frsync.cli import server\n"
        "from frsync.config import Settings\n"
        f"server._bring_schema_to_head(Settings.from_env(database_url={url!r}))\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('alembic', 'sqlalchemy')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_lean_serve_entry_refuses_a_bad_setting_like_frsync_serve(tmp_path: Path) -> None:
    env = {**os.environ, "FRSYNC_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    env["FRSYNC_RATE"] = "0"
    outputs = []
    for entry in (["frsync", "serve"], ["frsync.cli.server"]):
        done = subprocess.run(
            [sys.executable, "-m", *entry, "--sandbox"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 2
        outputs.append(done.stderr.strip())
    assert (
        outputs[0]
        == outputs[1]
        == "frsync serve: bad setting FRSYNC_RATE=0: must be a number > 0.0"
    )


# -- the template ---------------------------------------------------------------------------


def test_template_is_built_once_and_each_sandbox_gets_a_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FRSYNC_SANDBOX_CACHE", str(tmp_path))
    with Sandbox() as first, Sandbox() as second:
        first.new_tenant(fulfillment_requests=1, items_per_request=1)
        assert first.operator_token == second.operator_token
        assert first.base_url != second.base_url
        # The copies are apart: a tenant made in one is not in the other's database.
        with pytest.raises(SandboxError, match="404"):
            second.delete_tenant(first.new_tenant(1, 1).account_id)
    [built] = [path for path in tmp_path.iterdir()]
    assert built.name == template_key()
    database = built / "sandbox.db"
    with sqlite3.connect(database) as db:  # the template itself was never served from
        assert db.execute("SELECT count(*) FROM fulfillment_requests").fetchone() == (24,)
        assert db.execute("SELECT count(*) FROM accounts").fetchone() == (2,)


def test_two_processes_building_the_template_at_once_agree(tmp_path: Path) -> None:
    env = {**os.environ, "FRSYNC_SANDBOX_CACHE": str(tmp_path)}
    code = (
        "import json\nfrom frsync.testing._template import template\n"
        "made = template()\nprint(json.dumps([str(made.database), made.operator_token]))\n"
    )
    racers = [
        subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    results = [json.loads(racer.communicate(timeout=300)[0]) for racer in racers]
    assert results[0] == results[1]
    assert [path.name for path in tmp_path.iterdir()] == [template_key()]  # no leftovers
    assert template(tmp_path).operator_token == results[0][1]
