"""Bring a database's schema to the latest Alembic revision (`serve` and `load` call this).

Most starts find the schema already at head (a restarted server, every sandbox copied from its
template). Alembic costs half a second to import and run, so a SQLite database is first asked
directly: its `alembic_version` row against the head read from the revision files' text. Only
when they differ, or when that cannot be told for sure, does Alembic run.
"""

from __future__ import annotations

import re
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
# A revision file's own `revision = "…"` and `down_revision = "…" | None` lines.
_ASSIGNMENT = re.compile(r"^(revision|down_revision)\s*=\s*(.+?)\s*$", re.MULTILINE)
_QUOTED = re.compile(r"""^(?:"([^"\\]+)"|'([^'\\]+)')$""")


def sqlalchemy_url(url: str) -> str:
    """Our URLs name the backend; SQLAlchemy also wants the driver."""
    scheme, rest = url.split("://", 1)
    if scheme in ("postgresql", "postgres"):
        return f"postgresql+asyncpg://{rest}"
    return f"{scheme}://{rest}".split("?", 1)[0]


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["url"] = sqlalchemy_url(url)
    return config


def upgrade(url: str) -> None:
    """Upgrade to head. Blocking; from async code call it through `asyncio.to_thread`."""
    if is_at_head(url):
        return
    from alembic import command

    command.upgrade(alembic_config(url), "head")


def is_at_head(url: str) -> bool:
    """True when `url` is a SQLite file whose schema is known to be at the head revision;
    False whenever in doubt (no file yet, PostgreSQL, several heads, an unreadable table)."""
    head = head_revision()
    if head is None or not url.startswith("sqlite:///"):
        return False
    from frsync.store.sqlite import path_from_url

    path = Path(path_from_url(url))
    if not path.is_file():
        return False  # let Alembic create it, with its own messages when it cannot
    try:
        with closing(sqlite3.connect(path)) as db:
            rows = db.execute("SELECT version_num FROM alembic_version").fetchall()
    except sqlite3.Error:
        return False
    return rows == [(head,)]


def head_revision() -> str | None:
    """The one head of the revision files, read as text (importing them needs Alembic), or
    None when a file is not in the plain `revision = "…"` / `down_revision = …` shape."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        found = dict(_ASSIGNMENT.findall(path.read_text(encoding="utf-8")))
        revision = _quoted(found.get("revision", ""))
        down = found.get("down_revision", "")
        if revision is None or (down != "None" and _quoted(down) is None):
            return None  # a merge point, or a shape this reader does not know
        revisions.add(revision)
        if down != "None":
            parents.add(_quoted(down) or "")
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def _quoted(text: str) -> str | None:
    match = _QUOTED.match(text)
    return (match[1] or match[2]) if match else None
