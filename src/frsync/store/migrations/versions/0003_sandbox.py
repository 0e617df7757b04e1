"""sandbox mode: baseline, counters, tenants, fault rules and the request journal

Revision ID: 0003_sandbox
Revises: 0002
Create Date: 2026-11-27 08:00:00.000000

The tables behind `frsync serve --sandbox` (see frsync/sandbox). They live in the database,
not in a process, so every worker sees the same rules, counters and journal.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_sandbox"
down_revision = "0002"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_BASELINE_COLUMNS = (
    "accounting_synced, external_accounting_id, accounting_error, accounting_synced_at, updated_at"
)
# A database loaded before this revision gets its current state as the reset baseline (every
# later load takes a new one; see frsync/sandbox/sql.py). Copied, not imported, so
# this revision keeps doing the same whatever the code becomes.
_TAKE_BASELINE = (
    f"INSERT INTO sandbox_baseline_frs (id, {_BASELINE_COLUMNS})"
    f" SELECT id, {_BASELINE_COLUMNS} FROM fulfillment_requests",
    "INSERT INTO sandbox_baseline_items (id, fulfillment_request_id, external_accounting_item_id)"
    " SELECT id, fulfillment_request_id, external_accounting_item_id"
    " FROM fulfillment_request_items",
    "INSERT INTO sandbox_state (name, value)"
    " SELECT 'baseline_history_id', COALESCE(MAX(id), 0) FROM accounting_history",
)


def upgrade() -> None:
    op.create_table(
        "sandbox_baseline_frs",
        sa.Column("id", ID, autoincrement=False, nullable=False),
        sa.Column("accounting_synced", sa.Boolean(), nullable=True),
        sa.Column("external_accounting_id", sa.String(length=255), nullable=True),
        sa.Column("accounting_error", sa.Text(), nullable=True),
        sa.Column("accounting_synced_at", sa.BigInteger(), nullable=True),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "sandbox_baseline_items",
        sa.Column("id", ID, autoincrement=False, nullable=False),
        sa.Column("fulfillment_request_id", sa.BigInteger(), nullable=False),
        sa.Column("external_accounting_item_id", sa.String(length=255), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "sandbox_state",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "sandbox_tenants",
        sa.Column("account_id", ID, autoincrement=False, nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("removed_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("account_id"),
    )
    op.create_table(
        "sandbox_faults",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("rule", sa.Text(), nullable=False),
        sa.Column("remaining", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "sandbox_journal",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("query", sa.Text(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("duration_ms", sa.Float(), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("token_id", sa.BigInteger(), nullable=True),
        sa.Column("token_type", sa.String(length=16), nullable=True),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("body_truncated", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    for statement in _TAKE_BASELINE:
        op.execute(statement)


def downgrade() -> None:
    for table in ("sandbox_journal", "sandbox_faults", "sandbox_tenants", "sandbox_state",
                  "sandbox_baseline_items", "sandbox_baseline_frs"):  # fmt: skip
        op.drop_table(table)
