"""The tables, as SQLAlchemy Core metadata. Alembic migrations own the live schema;
`tests/test_migrations.py` checks the two agree."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    false,
    text,
)

from frsync.store.queries import HAS_ERROR, NOT_SYNCED

SCOPES = ("account", "source", "channel")
REVOKED = "revoked_at IS NOT NULL"


def _partial(name: str, predicate: str, *more: str) -> list[Index]:
    """Per scope column, an index over the rows matching `predicate`: (scope, id) for the
    order, then the columns other filters test, so that they never read the row."""
    return [
        Index(
            f"ix_fr_{scope}_{name}",
            *dict.fromkeys((f"{scope}_id", "id", "status", "source_id", *more)),
            sqlite_where=text(predicate), postgresql_where=text(predicate),
        )
        for scope in SCOPES
    ]  # fmt: skip


# On SQLite an INTEGER PRIMARY KEY is the rowid itself: the fastest lookup there is.
Id = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData()

# PostgreSQL: a tenth of each page kept free for the updated versions of its rows (migration
# 0008 sets the same).
_ROOM_ON_EACH_PAGE = {"fillfactor": 90}

accounts = Table(
    "accounts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=False),
    Column("name", Text, nullable=False),
)

sources = Table(
    "sources",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=False),
    Column("account_id", BigInteger, ForeignKey("accounts.id"), nullable=False),
    Column("name", Text, nullable=False),
    Index("ix_sources_account", "account_id"),  # the foreign key check of deleting accounts
)

channels = Table(
    "channels",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=False),
    Column("account_id", BigInteger, ForeignKey("accounts.id"), nullable=False),
    Column("name", Text, nullable=False),
    Index("ix_channels_account", "account_id"),  # the foreign key check of deleting accounts
)

# An FR as the platform sent it: what a PATCH never changes, with the read side's full indexes.
fulfillment_requests = Table(
    "fulfillment_requests",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=False),
    Column("fulfillment_request_number", Text, nullable=False),
    Column("account_id", BigInteger, ForeignKey("accounts.id"), nullable=False),
    Column("source_id", BigInteger, ForeignKey("sources.id"), nullable=False),
    Column("order_id", BigInteger, nullable=False),
    Column("channel_id", BigInteger, ForeignKey("channels.id"), nullable=True),
    Column("status", Text, nullable=False),
    # Times are milliseconds since the epoch, UTC: exact, compact and the same on every backend.
    Column("generated_at", BigInteger, nullable=False),
    Column("sent_at", BigInteger),
    Column("acknowledged_at", BigInteger),
    # Every list is "in this scope, ordered by id": one index per scope column.
    Index("ix_fr_account_id", "account_id", "id"),
    Index("ix_fr_source_id", "source_id", "id"),
    Index("ix_fr_channel_id", "channel_id", "id"),
    Index("ix_fr_order_id", "order_id"),
    Index("ix_fr_number", "fulfillment_request_number"),
    # filterStatus counted without reading rows (and one status paged in id order).
    *(Index(f"ix_fr_{scope}_status", f"{scope}_id", "status", "id") for scope in SCOPES),
    # filterSourceId for account and channel tokens (a source token's scope is its source).
    Index("ix_fr_account_source", "account_id", "source_id", "id"),
    Index("ix_fr_channel_source", "channel_id", "source_id", "id"),
)  # fmt: skip

# An FR's accounting state, one row per FR (migration 0008): the only FR row a PATCH writes.
# Apart from the wide table, so a PATCH inserts no entry into its eleven indexes: on
# PostgreSQL an update that changes an indexed column inserts into every index of its table,
# except partial ones whose predicate the new row fails. The scope columns and status are
# copies of the FR's (written by the same load statements), so the partial indexes below
# answer the connector's and the console's filters without reading the wide table.
fulfillment_request_accounting = Table(
    "fulfillment_request_accounting",
    metadata,
    Column("id", Id, ForeignKey("fulfillment_requests.id", ondelete="CASCADE"),
           primary_key=True, autoincrement=False),
    Column("account_id", BigInteger, nullable=False),
    Column("source_id", BigInteger, nullable=False),
    Column("channel_id", BigInteger, nullable=True),
    Column("status", Text, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("accounting_synced", Boolean),
    Column("external_accounting_id", String(255)),
    Column("accounting_error", Text),
    Column("accounting_synced_at", BigInteger),
    # The connector's "what is not yet synced" and the platform team's "what failed": small
    # indexes over just those rows, so their pages and counts never read the other rows.
    *_partial("not_synced", NOT_SYNCED),
    *_partial("has_error", HAS_ERROR, "accounting_synced"),
    # The console's Errors view, newest first, per scope and over every account.
    *(
        Index(f"ix_fr_{scope}_error_recent", f"{scope}_id", "updated_at", "id",
              sqlite_where=text(HAS_ERROR), postgresql_where=text(HAS_ERROR))
        for scope in SCOPES
    ),
    Index("ix_fr_error_recent", "updated_at", "id",
          sqlite_where=text(HAS_ERROR), postgresql_where=text(HAS_ERROR)),
    # Every PATCH changes a column some index here holds, so no update of this table is HOT;
    # the room still lets the new version land on the row's own page (one page written).
    postgresql_with=_ROOM_ON_EACH_PAGE,
)  # fmt: skip

# How many FRs each scope holds, per source and status (migration 0009): an FR counts once
# under its account, its source and its channel. Triggers on `fulfillment_requests` keep it
# (PATCHes never write that table), so counts on those filters sum a few rows here instead of
# reading one index entry per FR (store/queries.py, `count_sql`).
fulfillment_request_counts = Table(
    "fulfillment_request_counts",
    metadata,
    Column("scope", String(16), primary_key=True),  # a token type: account, source, channel
    Column("scope_id", BigInteger, primary_key=True),
    Column("source_id", BigInteger, primary_key=True),
    Column("status", Text, primary_key=True),
    Column("n", BigInteger, nullable=False),
)

fulfillment_request_items = Table(
    "fulfillment_request_items",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=False),
    Column(
        "fulfillment_request_id",
        BigInteger,
        ForeignKey("fulfillment_requests.id"),
        nullable=False,
    ),
    Column("sku", Text, nullable=False),
    Column("title", Text, nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("cost", Float, nullable=False),
    Column("order_item_id", BigInteger),
    Column("external_accounting_item_id", String(255)),
    Index("ix_item_fr_id", "fulfillment_request_id", "id"),
    # external_accounting_item_id is in no index, so a PATCH's update of an item is HOT (no
    # index entry) when its page has room for the new version.
    postgresql_with=_ROOM_ON_EACH_PAGE,
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    # SHA-256 of the token: the plaintext is shown once and never stored.
    Column("token_hash", LargeBinary(32), nullable=False, unique=True),
    Column("token_type", String(16), nullable=False),
    Column("scope_id", BigInteger, nullable=False),
    Column("label", Text),
    Column("created_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger),
    Index("ix_api_tokens_scope", "scope_id"),  # a sandbox reset deletes tenants' by range
    # Revoked tokens only: the token cache's once-a-second check counts these entries, not
    # every token (migration 0007).
    Index(
        "ix_api_tokens_revoked_at",
        "revoked_at",
        sqlite_where=text(REVOKED),
        postgresql_where=text(REVOKED),
    ),
)

accounting_history = Table(
    "accounting_history",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column(
        "fulfillment_request_id",
        BigInteger,
        ForeignKey("fulfillment_requests.id"),
        nullable=False,
    ),
    Column("at", BigInteger, nullable=False),
    Column("token_id", BigInteger, nullable=False),
    Column("token_type", String(16), nullable=False),
    Column("request_id", String(64), nullable=False),
    Column("changes", Text, nullable=False),  # JSON: field -> {before, after}
    Index("ix_history_fr_id", "fulfillment_request_id", "id"),
    Index("ix_history_at", "at"),  # the console's syncs per hour
)

# Sandbox mode (frsync.sandbox). The baseline is what the last load left: `reset` puts the
# accounting fields of every FR changed since back from it.
sandbox_baseline_frs = Table(
    "sandbox_baseline_frs",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=False),
    Column("accounting_synced", Boolean),
    Column("external_accounting_id", String(255)),
    Column("accounting_error", Text),
    Column("accounting_synced_at", BigInteger),
    Column("updated_at", BigInteger, nullable=False),
)

sandbox_baseline_items = Table(
    "sandbox_baseline_items",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=False),
    Column("fulfillment_request_id", BigInteger, nullable=False),
    Column("external_accounting_item_id", String(255)),
)

# Named counters: the history id the baseline was taken at, the next tenant id.
sandbox_state = Table(
    "sandbox_state",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("value", BigInteger, nullable=False),
)

sandbox_tenants = Table(
    "sandbox_tenants",
    metadata,
    Column("account_id", Id, primary_key=True, autoincrement=False),
    Column("created_at", BigInteger, nullable=False),
    Column("removed_at", BigInteger),  # kept, so a second DELETE is still a 204
)

sandbox_faults = Table(
    "sandbox_faults",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("rule", Text, nullable=False),  # JSON: match, action, times, probability
    Column("remaining", BigInteger),  # firings left; NULL: no `times`
    Column("created_at", BigInteger, nullable=False),
    Column("account_id", BigInteger),  # the tenant it was made through; NULL: global
    Column("skip_left", BigInteger),  # matching requests still let through; NULL: no `skip`
    Index("ix_sandbox_faults_account", "account_id", "id"),
)

sandbox_journal = Table(
    "sandbox_journal",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("at", BigInteger, nullable=False),
    Column("method", String(16), nullable=False),
    Column("path", Text, nullable=False),
    Column("query", Text, nullable=False),
    Column("status", Integer),  # NULL: the connection was dropped
    Column("duration_ms", Float, nullable=False),
    Column("request_id", String(64), nullable=False),
    Column("token_id", BigInteger),
    Column("token_type", String(16)),
    Column("body", Text),  # the request's JSON as sent, when it is JSON and ≤ 64 KiB
    Column("body_truncated", Boolean, nullable=False),
    Column("account_id", BigInteger),  # of the token that authenticated it; NULL: none did
    Column("body_omitted", Boolean, nullable=False, server_default=false()),
    Column("size", Integer, nullable=False, server_default="0"),  # bytes, for the bound
    Index("ix_sandbox_journal_account", "account_id", "id"),
)


def _token_id() -> Column[int]:
    return Column(
        "token_id", BigInteger, ForeignKey("api_tokens.id", ondelete="CASCADE"), nullable=False
    )


# The console's signed-in browsers, by the SHA-256 of the session id their cookie holds.
console_sessions = Table(
    "console_sessions",
    metadata,
    Column("session_hash", LargeBinary(32), primary_key=True),
    _token_id(),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Index("ix_console_sessions_expires_at", "expires_at"),
    Index("ix_console_sessions_token", "token_id"),  # the cascade of deleting tokens
)

# Requests and 429s per token per minute, added up from every worker (console/usage.py).
token_usage = Table(
    "token_usage",
    metadata,
    Column("token_id", BigInteger, ForeignKey("api_tokens.id", ondelete="CASCADE"),
           primary_key=True),
    Column("minute", BigInteger, primary_key=True),
    Column("requests", Integer, nullable=False),
    Column("rate_limited", Integer, nullable=False),
    Index("ix_token_usage_minute", "minute"),
)  # fmt: skip

token_last_used = Table(
    "token_last_used",
    metadata,
    Column("token_id", Id, ForeignKey("api_tokens.id", ondelete="CASCADE"), primary_key=True,
           autoincrement=False),
    Column("last_used_at", BigInteger, nullable=False),
)  # fmt: skip
