"""sandbox: fault rules and journal entries scoped to a tenant; journal bounds; token scope index

Revision ID: 0006_sandbox_tenant_scope
Revises: 0005_sync_accounting_function
Create Date: 2026-12-06 21:30:00.000000

- `sandbox_faults.account_id`: the tenant a rule was made through (NULL: a global rule);
  `skip_left`: matching requests the rule still lets through before it fires (NULL: none).
- `sandbox_journal.account_id`: the account of the token that authenticated the request;
  `body_omitted`: the request had no valid token, so its body was not kept; `size`: bytes the
  entry holds, for the journal's byte bound. Indexed by (account_id, id) for the per-tenant
  journal, its paging and its per-account bound.
- `api_tokens (scope_id)`: a reset deletes tenants' tokens by id range without a scan.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_sandbox_tenant_scope"
down_revision = "0005_sync_accounting_function"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sandbox_faults") as table:
        table.add_column(sa.Column("account_id", sa.BigInteger(), nullable=True))
        table.add_column(sa.Column("skip_left", sa.BigInteger(), nullable=True))
    op.create_index("ix_sandbox_faults_account", "sandbox_faults", ["account_id", "id"])
    with op.batch_alter_table("sandbox_journal") as table:
        table.add_column(sa.Column("account_id", sa.BigInteger(), nullable=True))
        table.add_column(
            sa.Column("body_omitted", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        table.add_column(sa.Column("size", sa.Integer(), nullable=False, server_default="0"))
    op.create_index("ix_sandbox_journal_account", "sandbox_journal", ["account_id", "id"])
    op.create_index("ix_api_tokens_scope", "api_tokens", ["scope_id"])


def downgrade() -> None:
    op.drop_index("ix_api_tokens_scope", table_name="api_tokens")
    op.drop_index("ix_sandbox_journal_account", table_name="sandbox_journal")
    with op.batch_alter_table("sandbox_journal") as table:
        table.drop_column("size")
        table.drop_column("body_omitted")
        table.drop_column("account_id")
    op.drop_index("ix_sandbox_faults_account", table_name="sandbox_faults")
    with op.batch_alter_table("sandbox_faults") as table:
        table.drop_column("skip_left")
        table.drop_column("account_id")
