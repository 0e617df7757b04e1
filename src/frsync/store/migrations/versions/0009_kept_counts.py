"""Kept counts of FRs per scope, source and status, for counts that read no index

Revision ID: 0009_kept_counts
Revises: 0008_narrow_accounting
Create Date: 2026-12-07 17:00:00.000000

`GET /fulfillment-requests/count` with no filter, a status or a source read one index entry
per FR in the scope: 6.4 ms at 1M FRs for an account with a third of them, and "synced"
(everything minus the not-synced entries) 10.4 ms. Those filters are on what a PATCH never
changes (the FR as the platform sent it), so their counts can be kept where FRs are written:

- `fulfillment_request_counts`: for each token scope (`account`, `source`, `channel`) and
  scope id, source and status, how many FRs there are. An FR counts in three rows, two when it
  has no channel. A count sums the few rows of its scope instead of reading its FRs.
- Triggers on `fulfillment_requests` keep it: an insert adds the FR, a delete takes it away,
  an update of a scope column or the status moves it. PATCHes write only
  `fulfillment_request_accounting` and never fire them. A row that falls to zero is deleted,
  so removed sandbox tenants leave nothing behind. SQLite's triggers run per row; PostgreSQL's
  per statement (below), and a load sends each batch's FRs in one statement.

The table is filled from the FRs already there. The SQL is written out here, not imported,
so this revision keeps doing the same whatever the code becomes.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_kept_counts"
down_revision = "0008_narrow_accounting"
branch_labels = None
depends_on = None

COUNTS = "fulfillment_request_counts"
KEY = "scope, scope_id, source_id, status"

SCOPES = ("account", "source", "channel")


def _add(r: str) -> list[str]:
    """One FR of the row `r` (NEW or OLD) added to its rows, an upsert per scope. An FR
    without a channel counts in no channel: INSERT … SELECT … WHERE, whose WHERE SQLite also
    needs to tell ON CONFLICT from a join's ON."""
    return [
        f"INSERT INTO {COUNTS} ({KEY}, n) SELECT '{scope}', {r}.{scope}_id, {r}.source_id,"
        f" {r}.status, 1 WHERE {r}.{scope}_id IS NOT NULL"
        f" ON CONFLICT ({KEY}) DO UPDATE SET n = {COUNTS}.n + 1"
        for scope in SCOPES
    ]


def _take(r: str) -> list[str]:
    """One FR of the row `r` taken from its rows, and a row that falls to zero deleted."""
    where = " OR ".join(f"(scope = '{scope}' AND scope_id = {r}.{scope}_id)" for scope in SCOPES)
    where = f"({where}) AND source_id = {r}.source_id AND status = {r}.status"
    return [
        f"UPDATE {COUNTS} SET n = n - 1 WHERE {where}",
        f"DELETE FROM {COUNTS} WHERE n = 0 AND {where}",
    ]


_MOVED = (
    "OLD.account_id IS NOT NEW.account_id OR OLD.source_id IS NOT NEW.source_id"
    " OR OLD.channel_id IS NOT NEW.channel_id OR OLD.status IS NOT NEW.status"
)


def _sqlite_triggers() -> list[str]:
    def trigger(name: str, event: str, body: list[str], when: str = "") -> str:
        statements = "".join(f"  {sql};\n" for sql in body)
        when = f" WHEN {when}" if when else ""
        return (
            f"CREATE TRIGGER {name} AFTER {event} ON fulfillment_requests{when}\n"
            f"BEGIN\n{statements}END"
        )

    scoped = "UPDATE OF account_id, source_id, channel_id, status"
    return [
        trigger("fr_counts_insert", "INSERT", _add("NEW")),
        trigger("fr_counts_delete", "DELETE", _take("OLD")),
        trigger("fr_counts_update", scoped, [*_take("OLD"), *_add("NEW")], _MOVED),
    ]


# PostgreSQL keeps every version of a row updated within one transaction, so a counter
# updated once per FR would make a load of n FRs walk O(n) versions per update. Its triggers
# run once per statement instead, on the statement's rows (transition tables): one upsert per
# scope, source and status that the statement changed. A load upserts its FRs in one
# statement per batch (store/postgres_sql.py) for this.
_POSTGRES_DELTAS = {
    "INSERT": "SELECT account_id, source_id, channel_id, status, 1 AS d FROM new_rows",
    "DELETE": "SELECT account_id, source_id, channel_id, status, -1 AS d FROM old_rows",
    "UPDATE": "SELECT account_id, source_id, channel_id, status, 1 AS d FROM new_rows"
    " UNION ALL SELECT account_id, source_id, channel_id, status, -1 FROM old_rows",
}
_BY_OPERATION = " ".join(f"WHEN '{op}' THEN '{sql}'" for op, sql in _POSTGRES_DELTAS.items())
# The rows go in key order, so two transactions that change the same counts lock them in the
# same order, and never wait for each other in a circle.
_POSTGRES_FUNCTION = f"""
CREATE FUNCTION frsync_count_frs() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
    deltas text := CASE TG_OP {_BY_OPERATION} END;
BEGIN
    EXECUTE format(
        'INSERT INTO {COUNTS} AS c ({KEY}, n)'
        ' SELECT k.scope, k.id, r.source_id, r.status, SUM(r.d) FROM (%s) AS r'
        ' CROSS JOIN LATERAL (VALUES (''account'', r.account_id), (''source'', r.source_id),'
        ' (''channel'', r.channel_id)) AS k (scope, id)'
        ' WHERE k.id IS NOT NULL GROUP BY 1, 2, 3, 4 HAVING SUM(r.d) <> 0 ORDER BY 1, 2, 3, 4'
        ' ON CONFLICT ({KEY}) DO UPDATE SET n = c.n + excluded.n', deltas);
    IF TG_OP <> 'INSERT' THEN  -- a row fallen to zero goes
        EXECUTE format(
            'DELETE FROM {COUNTS} AS c USING (%s) AS r'
            ' WHERE c.n = 0 AND c.source_id = r.source_id AND c.status = r.status'
            ' AND (c.scope, c.scope_id) IN ((''account'', r.account_id),'
            ' (''source'', r.source_id), (''channel'', r.channel_id))', deltas);
    END IF;
    RETURN NULL;
END
$fn$
"""
_POSTGRES_TRIGGERS = [
    f"CREATE TRIGGER fr_counts_{op.lower()} AFTER {op} ON fulfillment_requests"
    f" REFERENCING {'NEW TABLE AS new_rows' if op != 'DELETE' else ''}"
    f" {'OLD TABLE AS old_rows' if op != 'INSERT' else ''}"
    " FOR EACH STATEMENT EXECUTE FUNCTION frsync_count_frs()"
    for op in _POSTGRES_DELTAS
]
TRIGGERS = [f"fr_counts_{op.lower()}" for op in _POSTGRES_DELTAS]


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    op.create_table(
        COUNTS,
        sa.Column("scope", sa.String(16), primary_key=True),
        sa.Column("scope_id", sa.BigInteger(), primary_key=True),
        sa.Column("source_id", sa.BigInteger(), primary_key=True),
        sa.Column("status", sa.Text(), primary_key=True),
        sa.Column("n", sa.BigInteger(), nullable=False),
    )
    per_scope = (
        f"SELECT '{scope}', {scope}_id, source_id, status, COUNT(*) FROM fulfillment_requests"
        f" WHERE {scope}_id IS NOT NULL GROUP BY {scope}_id, source_id, status"
        for scope in SCOPES
    )
    op.execute(f"INSERT INTO {COUNTS} ({KEY}, n) {' UNION ALL '.join(per_scope)}")
    if postgres:
        op.execute(_POSTGRES_FUNCTION)
        for sql in _POSTGRES_TRIGGERS:
            op.execute(sql)
    else:
        for sql in _sqlite_triggers():
            op.execute(sql)


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for name in TRIGGERS:
        op.execute(f"DROP TRIGGER {name}" + (" ON fulfillment_requests" if postgres else ""))
    if postgres:
        op.execute("DROP FUNCTION frsync_count_frs()")
    op.drop_table(COUNTS)
