"""The accounting state in a narrow table of its own: a PATCH writes no row of the wide one

Revision ID: 0008_narrow_accounting
Revises: 0007_patch_batch
Create Date: 2026-12-07 00:40:00.000000

`fulfillment_requests` carried 21 indexes, 10 of them on the accounting state (the partial
"not synced" / "has an error" indexes and the Errors view's, keyed on `updated_at`). On
PostgreSQL an update that changes an indexed column (a partial index's predicate included) is
never HOT and inserts an entry into every index of the table whose predicate the new row
meets: every PATCH did, into 11 of them at least (the primary key and the 10 full indexes).

- `fulfillment_request_accounting`, one row per FR: the mutable accounting state
  (`updated_at`, `accounting_synced`, `external_accounting_id`, `accounting_error`,
  `accounting_synced_at`) plus copies of the FR's scope columns and status, which its 10
  partial indexes are keyed on. Those columns are copied from the FR in one INSERT … SELECT,
  then dropped from `fulfillment_requests` with their indexes; the wide table keeps the FR as
  the platform sent it and its 11 indexes, which no PATCH touches any more. A PATCH that sets
  accountingSynced to true inserts into the narrow table's primary key only: a partial index
  takes no entry for a row its predicate refuses.
- On PostgreSQL, both that table and `fulfillment_request_items` leave a tenth of each page
  free (fillfactor 90): an item's `external_accounting_item_id` is in no index, so its update
  is HOT when the page has room, and the accounting row's new version stays on its page.
- `frsync_sync_accounting` (PostgreSQL) as migration 0007 made it, reading and locking the
  accounting row (its scope columns are there) and updating it, instead of the FR's row.
  `frsync_sync_accounting_batch` calls it by name and is unchanged.

SQLite drops the columns with ALTER TABLE … DROP COLUMN (3.35+; 5 s at 1M FRs); its
downgrade adds `updated_at` back NOT NULL DEFAULT 0 (SQLite cannot add a NOT NULL column
without a default, and recreating the table would mean rebuilding every table whose foreign
key names it); the values are copied back at once, and no code of 0007 relies on the default.

The SQL is written out here, not imported, so this revision keeps doing the same whatever the
code becomes.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_narrow_accounting"
down_revision = "0007_patch_batch"
branch_labels = None
depends_on = None

WIDE = "fulfillment_requests"
NARROW = "fulfillment_request_accounting"
COPIED = ("account_id", "source_id", "channel_id", "status")
MOVED = (
    "updated_at",
    "accounting_synced",
    "external_accounting_id",
    "accounting_error",
    "accounting_synced_at",
)
SCOPES = ("account", "source", "channel")
# The predicates exactly as `frsync.store.queries` writes them (SQLite matches them by text).
NOT_SYNCED = "accounting_synced IS NOT TRUE"
HAS_ERROR = "accounting_error <> ''"
FILLFACTOR = 90

FUNCTION = """
CREATE OR REPLACE FUNCTION frsync_sync_accounting(
    p_fr_id bigint,
    p_token_type text,          -- 'account' | 'source' | 'channel' | 'operator'
    p_scope_id bigint,
    p_lock_timeout_ms integer,
    p_set_synced boolean, p_synced boolean,
    p_set_ext boolean, p_ext text,
    p_set_error boolean, p_error text,
    p_item_ids bigint[],        -- the body's items, in order ('{}' when none)
    p_item_set boolean[],       -- whether each gave externalAccountingItemId
    p_item_exts text[],
    p_now bigint,
    p_at bigint, p_token_id bigint, p_request_id text
) RETURNS TABLE (
    account_id bigint, source_id bigint, channel_id bigint, accounting_synced boolean,
    external_accounting_id text, accounting_error text, accounting_synced_at bigint,
    item_ids bigint[], item_exts text[], outcome text
)
LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
DECLARE
    fr record;
    v_ids bigint[];
    v_exts text[];
    parts text[] := '{}';
    item_parts text[] := '{}';
    c_synced boolean := false;
    c_ext boolean := false;
    c_error boolean := false;
    c_items boolean := false;
BEGIN
    PERFORM set_config('lock_timeout', p_lock_timeout_ms || 'ms', true);
    SELECT f.account_id, f.source_id, f.channel_id, f.accounting_synced,
           f.external_accounting_id, f.accounting_error, f.accounting_synced_at
      INTO fr FROM fulfillment_request_accounting AS f WHERE f.id = p_fr_id FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT NULL::bigint, NULL::bigint, NULL::bigint, NULL::boolean,
            NULL::text, NULL::text, NULL::bigint, NULL::bigint[], NULL::text[], 'missing'::text;
        RETURN;
    END IF;
    SELECT array_agg(i.id ORDER BY i.id), array_agg(i.external_accounting_item_id ORDER BY i.id)
      INTO v_ids, v_exts
      FROM (SELECT t.id, t.external_accounting_item_id FROM fulfillment_request_items AS t
             WHERE t.fulfillment_request_id = p_fr_id ORDER BY t.id FOR NO KEY UPDATE) AS i;
    IF NOT coalesce(CASE p_token_type
            WHEN 'operator' THEN true
            WHEN 'account' THEN fr.account_id = p_scope_id
            WHEN 'source' THEN fr.source_id = p_scope_id
            WHEN 'channel' THEN fr.channel_id = p_scope_id
        END, false)
       OR NOT (p_item_ids <@ coalesce(v_ids, '{}'::bigint[]))
       OR cardinality(p_item_ids) <> (SELECT count(DISTINCT x) FROM unnest(p_item_ids) AS x)
    THEN
        RETURN QUERY SELECT fr.account_id, fr.source_id, fr.channel_id, fr.accounting_synced,
            fr.external_accounting_id::text, fr.accounting_error, fr.accounting_synced_at,
            v_ids, v_exts::text[], 'rejected'::text;
        RETURN;
    END IF;

    c_synced := p_set_synced AND p_synced IS DISTINCT FROM fr.accounting_synced;
    c_ext := p_set_ext AND p_ext IS DISTINCT FROM fr.external_accounting_id;
    c_error := p_set_error AND p_error IS DISTINCT FROM fr.accounting_error;
    IF c_synced THEN
        parts := parts || ('"accountingSynced":{"before":'
            || coalesce(to_json(fr.accounting_synced)::text, 'null') || ',"after":'
            || coalesce(to_json(p_synced)::text, 'null') || '}');
    END IF;
    IF c_ext THEN
        parts := parts || ('"externalAccountingId":{"before":'
            || coalesce(to_json(fr.external_accounting_id::text)::text, 'null') || ',"after":'
            || coalesce(to_json(p_ext)::text, 'null') || '}');
    END IF;
    IF c_error THEN
        parts := parts || ('"accountingError":{"before":'
            || coalesce(to_json(fr.accounting_error)::text, 'null') || ',"after":'
            || coalesce(to_json(p_error)::text, 'null') || '}');
    END IF;

    -- The body's items whose external id changes, in the body's order.
    SELECT coalesce(array_agg('{"id":' || u.id || ',"externalAccountingItemId":{"before":'
               || coalesce(to_json(o.ext)::text, 'null') || ',"after":'
               || coalesce(to_json(u.ext)::text, 'null') || '}}' ORDER BY u.n), '{}')
      INTO item_parts
      FROM unnest(p_item_ids, p_item_set, p_item_exts) WITH ORDINALITY AS u(id, given, ext, n)
      JOIN unnest(v_ids, v_exts) AS o(id, ext) ON o.id = u.id
     WHERE u.given AND u.ext IS DISTINCT FROM o.ext;
    c_items := cardinality(item_parts) > 0;
    IF c_items THEN
        parts := parts || ('"items":[' || array_to_string(item_parts, ',') || ']');
        UPDATE fulfillment_request_items AS t SET external_accounting_item_id = u.ext
          FROM unnest(p_item_ids, p_item_set, p_item_exts) AS u(id, given, ext)
         WHERE t.id = u.id AND t.fulfillment_request_id = p_fr_id AND u.given
           AND t.external_accounting_item_id IS DISTINCT FROM u.ext;
    END IF;

    IF c_synced OR c_ext OR c_error OR c_items THEN
        UPDATE fulfillment_request_accounting AS f SET
            accounting_synced = CASE WHEN c_synced THEN p_synced ELSE f.accounting_synced END,
            accounting_synced_at = CASE
                WHEN NOT c_synced THEN f.accounting_synced_at
                WHEN p_synced IS TRUE THEN p_now
                ELSE NULL END,
            external_accounting_id = CASE WHEN c_ext THEN p_ext ELSE f.external_accounting_id END,
            accounting_error = CASE WHEN c_error THEN p_error ELSE f.accounting_error END,
            updated_at = p_now
         WHERE f.id = p_fr_id;
    END IF;
    -- A PATCH that changes nothing leaves no history entry (SPEC §2).
    IF cardinality(parts) > 0 THEN
        INSERT INTO accounting_history
            (fulfillment_request_id, at, token_id, token_type, request_id, changes)
            VALUES (p_fr_id, p_at, p_token_id, p_token_type, p_request_id,
                    '{' || array_to_string(parts, ',') || '}');
    END IF;
    RETURN QUERY SELECT NULL::bigint, NULL::bigint, NULL::bigint, NULL::boolean, NULL::text,
        NULL::text, NULL::bigint, NULL::bigint[], NULL::text[], 'ok'::text;
END
$fn$
"""

# Migration 0007's function: the same, on the FR's row.
_OLD_FUNCTION = FUNCTION.replace(f"{NARROW} AS f", f"{WIDE} AS f")


def _indexes() -> list[tuple[str, list[str], str]]:
    """The accounting state's indexes (migrations 0002 and 0004): name, columns, predicate."""
    indexes = []
    for name, predicate, more in (
        ("not_synced", NOT_SYNCED, ()),
        ("has_error", HAS_ERROR, ("accounting_synced",)),
    ):
        for scope in SCOPES:
            keys = list(dict.fromkeys((f"{scope}_id", "id", "status", "source_id", *more)))
            indexes.append((f"ix_fr_{scope}_{name}", keys, predicate))
    for scope in SCOPES:
        keys = [f"{scope}_id", "updated_at", "id"]
        indexes.append((f"ix_fr_{scope}_error_recent", keys, HAS_ERROR))
    indexes.append(("ix_fr_error_recent", ["updated_at", "id"], HAS_ERROR))
    return indexes


def _create_indexes(table: str) -> None:
    for name, columns, predicate in _indexes():
        where = sa.text(predicate)
        op.create_index(name, table, columns, sqlite_where=where, postgresql_where=where)


def _drop_indexes(table: str) -> None:
    for name, _, _ in reversed(_indexes()):
        op.drop_index(name, table_name=table)


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    op.create_table(
        NARROW,
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  sa.ForeignKey(f"{WIDE}.id", ondelete="CASCADE"), primary_key=True,
                  autoincrement=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("source_id", sa.BigInteger(), nullable=False),
        sa.Column("channel_id", sa.BigInteger(), nullable=True),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("accounting_synced", sa.Boolean()),
        sa.Column("external_accounting_id", sa.String(255)),
        sa.Column("accounting_error", sa.Text()),
        sa.Column("accounting_synced_at", sa.BigInteger()),
        postgresql_with={"fillfactor": FILLFACTOR},
    )  # fmt: skip
    columns = ", ".join(("id", *COPIED, *MOVED))
    op.execute(f"INSERT INTO {NARROW} ({columns}) SELECT {columns} FROM {WIDE}")
    _drop_indexes(WIDE)
    for column in MOVED:
        op.execute(f"ALTER TABLE {WIDE} DROP COLUMN {column}")
    _create_indexes(NARROW)  # after the copy: one sort per index, not an insert per row
    if postgres:
        op.execute(f"ALTER TABLE fulfillment_request_items SET (fillfactor = {FILLFACTOR})")
        op.execute(FUNCTION)
        op.execute(f"ANALYZE {NARROW}")


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        op.execute(_OLD_FUNCTION)
        op.execute("ALTER TABLE fulfillment_request_items RESET (fillfactor)")
    _drop_indexes(NARROW)
    op.execute(f"ALTER TABLE {WIDE} ADD COLUMN updated_at BIGINT NOT NULL DEFAULT 0")
    op.execute(f"ALTER TABLE {WIDE} ADD COLUMN accounting_synced BOOLEAN")
    op.execute(f"ALTER TABLE {WIDE} ADD COLUMN external_accounting_id VARCHAR(255)")
    op.execute(f"ALTER TABLE {WIDE} ADD COLUMN accounting_error TEXT")
    op.execute(f"ALTER TABLE {WIDE} ADD COLUMN accounting_synced_at BIGINT")
    if postgres:
        op.execute(f"ALTER TABLE {WIDE} ALTER COLUMN updated_at DROP DEFAULT")
    assignments = ", ".join(f"{column} = a.{column}" for column in MOVED)
    op.execute(f"UPDATE {WIDE} SET {assignments} FROM {NARROW} AS a WHERE a.id = {WIDE}.id")
    op.drop_table(NARROW)
    _create_indexes(WIDE)
