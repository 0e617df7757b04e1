"""Alembic owns the schema; store/schema.py describes it. They must agree on every backend."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from frsync.store import migrate
from frsync.store.schema import metadata


def test_migrations_produce_exactly_the_declared_schema(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    migrate(url)
    migrate(url)  # a second run is a no-op
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection), metadata)
    finally:
        engine.dispose()
    assert diff == []
