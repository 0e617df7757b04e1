"""read-side indexes: the list and count filters at a million FRs

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 18:00:00.000000

Partial indexes for "not yet synced" and "has an error" per scope column (scope, id, then the
columns other filters test), (scope, status, id) per scope column, and the source filter for
account and channel tokens. The predicates are written exactly as `frsync.store.queries`
writes them: SQLite uses a partial index only when the query repeats its predicate word for
word. They are copied here, not imported, so this revision keeps building the same indexes
whatever the code becomes.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TABLE = "fulfillment_requests"
SCOPES = ("account", "source", "channel")
# name -> (predicate, columns after the scope's id)
PARTIAL = {
    "not_synced": ("accounting_synced IS NOT TRUE", ("id", "status", "source_id")),
    "has_error": ("accounting_error <> ''", ("id", "status", "source_id", "accounting_synced")),
}


def _names() -> list[str]:
    names = [f"ix_fr_{scope}_{name}" for name in PARTIAL for scope in SCOPES]
    names += [f"ix_fr_{scope}_status" for scope in SCOPES]
    return [*names, "ix_fr_account_source", "ix_fr_channel_source"]


def upgrade() -> None:
    for name, (predicate, columns) in PARTIAL.items():
        for scope in SCOPES:
            # A source index needs no second source_id.
            keys = list(dict.fromkeys((f"{scope}_id", *columns)))
            op.create_index(
                f"ix_fr_{scope}_{name}", TABLE, keys,
                sqlite_where=sa.text(predicate), postgresql_where=sa.text(predicate),
            )  # fmt: skip
    for scope in SCOPES:
        op.create_index(f"ix_fr_{scope}_status", TABLE, [f"{scope}_id", "status", "id"])
    op.create_index("ix_fr_account_source", TABLE, ["account_id", "source_id", "id"])
    op.create_index("ix_fr_channel_source", TABLE, ["channel_id", "source_id", "id"])


def downgrade() -> None:
    for name in reversed(_names()):
        op.drop_index(name, table_name=TABLE)
