"""console: sessions, per-token usage, and the indexes of the console's views

Revision ID: 0004_console
Revises: 0003_sandbox
Create Date: 2026-11-27 07:40:00.000000

- `console_sessions`: a signed-in browser, by the SHA-256 of its random session id (the
  cookie holds the id, never the token); shared by every worker process.
- `token_usage` (requests and 429s per token per minute) and `token_last_used`: each worker
  counts in memory and adds its counts here every few seconds (console/usage.py).
- Errors view, newest first: per scope column, (scope, updated_at, id) over the FRs with an
  error, and (updated_at, id) over them for the operator's every-account view.
- Syncs per hour: accounting history by time.
The error predicate is copied from `frsync.store.queries.HAS_ERROR`, not imported (see 0002).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0004_console"
down_revision = "0003_sandbox"
branch_labels = None
depends_on = None

HAS_ERROR = "accounting_error <> ''"
SCOPES = ("account", "source", "channel")
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _token_fk() -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["token_id"], ["api_tokens.id"], ondelete="CASCADE")


def upgrade() -> None:
    op.create_table(
        "console_sessions",
        sa.Column("session_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("token_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        _token_fk(),
        sa.PrimaryKeyConstraint("session_hash"),
    )
    op.create_index("ix_console_sessions_expires_at", "console_sessions", ["expires_at"])
    op.create_table(
        "token_usage",
        sa.Column("token_id", sa.BigInteger(), nullable=False),
        sa.Column("minute", sa.BigInteger(), nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("rate_limited", sa.Integer(), nullable=False),
        _token_fk(),
        sa.PrimaryKeyConstraint("token_id", "minute"),
    )
    op.create_index("ix_token_usage_minute", "token_usage", ["minute"])
    op.create_table(
        "token_last_used",
        sa.Column("token_id", _ID, autoincrement=False, nullable=False),
        sa.Column("last_used_at", sa.BigInteger(), nullable=False),
        _token_fk(),
        sa.PrimaryKeyConstraint("token_id"),
    )
    where: dict[str, Any] = {
        "sqlite_where": sa.text(HAS_ERROR),
        "postgresql_where": sa.text(HAS_ERROR),
    }
    for scope in SCOPES:
        op.create_index(
            f"ix_fr_{scope}_error_recent", "fulfillment_requests",
            [f"{scope}_id", "updated_at", "id"], **where,
        )  # fmt: skip
    op.create_index("ix_fr_error_recent", "fulfillment_requests", ["updated_at", "id"], **where)
    op.create_index("ix_history_at", "accounting_history", ["at"])


def downgrade() -> None:
    op.drop_index("ix_history_at", table_name="accounting_history")
    op.drop_index("ix_fr_error_recent", table_name="fulfillment_requests")
    for scope in reversed(SCOPES):
        op.drop_index(f"ix_fr_{scope}_error_recent", table_name="fulfillment_requests")
    op.drop_table("token_last_used")
    op.drop_index("ix_token_usage_minute", table_name="token_usage")
    op.drop_table("token_usage")
    op.drop_index("ix_console_sessions_expires_at", table_name="console_sessions")
    op.drop_table("console_sessions")
