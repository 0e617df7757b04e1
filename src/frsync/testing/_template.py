"""The sandbox's template database: migrated, with the demo data and an operator token, built
once per installed frsync and copied for each sandbox (a copy takes milliseconds; building
takes two `frsync` commands, a second or more).

Templates live under a per-user cache directory ($FRSYNC_SANDBOX_CACHE, else
$XDG_CACHE_HOME/frsync/sandbox, else ~/.cache/frsync/sandbox), one folder per key: the frsync
version and a hash of every file of the installed package, so a changed migration, demo data
set or server gets a fresh template. A folder is built under a temporary name and renamed into
place, so a process never sees half a template, and two that race each build one and keep the
first renamed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import frsync

DATABASE = "sandbox.db"
_META = "template.json"  # written last: a folder with it is a whole template
_KEPT = 4  # templates kept per user (older installs' are pruned when a new one is built)
_ABANDONED_AFTER = 3600.0  # seconds: a build folder this old belongs to a dead process


class TemplateError(Exception):
    """The template could not be built (the message carries the command's error output)."""


@dataclass(frozen=True)
class Template:
    database: Path
    operator_token: str


def cache_root() -> Path:
    explicit = os.environ.get("FRSYNC_SANDBOX_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "frsync" / "sandbox"


def template_key() -> str:
    """The frsync version and a digest of the package's files (a few milliseconds)."""
    package = Path(frsync.__file__).parent
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(path.relative_to(package).as_posix().encode())
            digest.update(path.read_bytes())
    return f"{frsync.__version__}-{digest.hexdigest()[:20]}"


def template(root: Path | None = None) -> Template:
    """This install's template, built now if there is none yet."""
    root = root or cache_root()
    final = root / template_key()
    if not (final / _META).is_file():
        _build_into(root, final)
    meta = json.loads((final / _META).read_text(encoding="utf-8"))
    return Template(final / DATABASE, meta["operatorToken"])


def _build_into(root: Path, final: Path) -> None:
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=".building-", dir=root))
    try:
        token = _build(building / DATABASE)
        (building / _META).write_text(json.dumps({"operatorToken": token}), encoding="utf-8")
        try:
            building.rename(final)
        except OSError:
            if not (final / _META).is_file():  # not a lost race: a real failure
                raise
        else:
            _prune(root, keep=final)
    finally:
        shutil.rmtree(building, ignore_errors=True)


def _build(database: Path) -> str:
    env = server_environment(database)
    _frsync(["demo"], env)
    token = _frsync(["token", "create", "--type", "operator", "--label", "frsync.testing"], env)
    if Path(f"{database}-wal").exists():  # every connection closed cleanly: WAL folded in
        raise TemplateError(f"{database} kept a write-ahead log after the build")
    return token.strip()


def server_environment(database: Path) -> dict[str, str]:
    """The environment of a sandbox's `frsync` commands: none of the caller's FRSYNC_*
    settings (they would point it at another database, Redis or port), this database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRSYNC_")}
    env["FRSYNC_DATABASE_URL"] = f"sqlite:///{database}"
    return env


def _frsync(arguments: list[str], env: dict[str, str]) -> str:
    command = [sys.executable, "-m", "frsync", *arguments]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)  # noqa: S603
    if done.returncode != 0:
        raise TemplateError(f"frsync {arguments[0]} failed: {done.stderr.strip()[-2000:]}")
    return done.stdout


def _prune(root: Path, keep: Path) -> None:
    """Drop all but the newest templates: each install (and each edit of a development
    install) makes its own."""
    built = [path for path in root.iterdir() if (path / _META).is_file() and path != keep]
    built.sort(key=lambda path: path.stat().st_mtime, reverse=True)
    abandoned = [  # builds whose process died before renaming them
        path
        for path in root.glob(".building-*")
        if path.stat().st_mtime < time.time() - _ABANDONED_AFTER
    ]
    for stale in built[_KEPT - 1 :] + abandoned:
        shutil.rmtree(stale, ignore_errors=True)
