"""Bring a database's schema to the latest Alembic revision (`serve` and `load` call this)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"


def sqlalchemy_url(url: str) -> str:
    """Our URLs name the backend; SQLAlchemy also wants the driver."""
    scheme, rest = url.split("://", 1)
    if scheme in ("postgresql", "postgres"):
        return f"postgresql+asyncpg://{rest}"
    return f"{scheme}://{rest}".split("?", 1)[0]


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["url"] = sqlalchemy_url(url)
    return config


def upgrade(url: str) -> None:
    """Upgrade to head. Blocking; from async code call it through `asyncio.to_thread`."""
    command.upgrade(alembic_config(url), "head")
