"""Settings are read once, typed and bounded: a bad one stops the command with exit code 2 and
a message that names it, never a traceback and never a 500 later."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest

from frsync.cli import main
from frsync.config import Settings, SettingsError
from tests.support import free_port


def frsync(*args: str) -> int:
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    return int(exit_info.value.code or 0)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("FRSYNC_RATE", "0"),
        ("FRSYNC_RATE", "nan"),
        ("FRSYNC_BURST", "0"),
        ("FRSYNC_WORKERS", "65"),
        ("FRSYNC_PORT", "70000"),
        ("FRSYNC_MAX_BODY_BYTES", "-1"),
        ("FRSYNC_REDIS_TIMEOUT", "0"),
        ("FRSYNC_SANDBOX", "maybe"),
        ("FRSYNC_POOL_SIZE", "many"),
        ("FRSYNC_LOOP_LAG_SAMPLE_MS", "0"),
    ],
)
def test_a_bad_variable_is_refused_by_name(variable: str, value: str) -> None:
    with pytest.raises(SettingsError) as refused:
        Settings.from_env({variable: value})
    assert str(refused.value).startswith(f"{variable}={value!r}: must be")


def test_variables_are_parsed_and_flags_win_even_over_a_bad_variable() -> None:
    environ = {"FRSYNC_RATE": "0", "FRSYNC_BURST": "7", "FRSYNC_SANDBOX": "yes"}
    settings = Settings.from_env(environ, rate=3.5)
    assert (settings.rate, settings.burst, settings.sandbox) == (3.5, 7, True)


def test_keyword_construction_and_copies_are_checked_too() -> None:
    settings = Settings(database_url="sqlite:///x.db", burst=5)
    assert settings.replace(burst=6).burst == dataclasses.replace(settings, burst=6).burst == 6
    with pytest.raises(SettingsError, match=r"workers=-3: must be an integer >= 1"):
        settings.replace(workers=-3)
    with pytest.raises(SettingsError, match="rate"):
        dataclasses.replace(settings, rate=-1.0)


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["serve", "--workers", "-3"], "bad setting --workers -3: must be an integer >= 1"),
        (["serve", "--port", "65536"], "bad setting --port 65536: must be an integer <= 65535"),
        (["serve", "--burst", "0"], "bad setting --burst 0: must be an integer >= 1"),
        (
            ["serve", "--database-url", "mysql://root:hunter2@db/frsync"],
            "bad setting --database-url mysql://…: unsupported database URL scheme 'mysql'",
        ),
        (
            ["serve", "--redis-url", "http://cache:6379"],
            "bad setting --redis-url http://…: unsupported rate-limit store scheme 'http'",
        ),
        (["demo", "--database-url", "mysql://db/x"], "frsync demo: bad setting --database-url"),
        (["load", "x.json", "--database-url", "oracle://db"], "scheme 'oracle'"),
        (["token", "list", "--database-url", "mysql://db/x"], "scheme 'mysql'"),
    ],
)
def test_a_bad_flag_stops_the_command_before_it_starts(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert frsync(*argv) == 2
    error = capsys.readouterr().err
    assert says in error
    assert "hunter2" not in error  # a URL's password is never echoed


def test_the_rate_limit_store_url_keeps_its_public_names(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`rate_limit_url` is set by FRSYNC_REDIS_URL (and `--redis-url`, above) and is named so
    when it is bad."""
    assert Settings.from_env({"FRSYNC_REDIS_URL": "memory://"}).rate_limit_url == "memory://"
    monkeypatch.setenv("FRSYNC_DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
    monkeypatch.setenv("FRSYNC_REDIS_URL", "http://cache:6379")
    assert frsync("serve") == 2
    says = "bad setting FRSYNC_REDIS_URL=http://…: unsupported rate-limit store scheme 'http'"
    assert says in capsys.readouterr().err


def test_a_bad_variable_stops_every_server_command(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FRSYNC_DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
    monkeypatch.setenv("FRSYNC_RATE", "0")
    for argv in (["serve"], ["demo"], ["token", "list"]):
        assert frsync(*argv) == 2
        assert "bad setting FRSYNC_RATE=0: must be a number > 0.0" in capsys.readouterr().err
    assert not (tmp_path / "x.db").exists()  # refused before anything was touched


def test_serve_with_rate_zero_exits_2_without_a_traceback(tmp_path: Path) -> None:
    env = {**os.environ, "FRSYNC_RATE": "0", "FRSYNC_DATABASE_URL": f"sqlite:///{tmp_path}/x.db"}
    result = subprocess.run(
        [sys.executable, "-m", "frsync", "serve", "--port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "FRSYNC_RATE=0" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_database_that_cannot_be_opened_is_a_bad_setting_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing_folder = f"sqlite:///{tmp_path}/no/such/folder/x.db"
    refused = f"postgresql://postgres:hunter2@127.0.0.1:{free_port()}/x"
    for url in (missing_folder, refused):
        assert frsync("token", "list", "--database-url", url) == 2
        error = capsys.readouterr().err
        assert "bad setting --database-url" in error
        assert "cannot open the database" in error
        assert "hunter2" not in error
