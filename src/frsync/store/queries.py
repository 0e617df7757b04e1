"""SQL text shared by the SQL backends: the list/count filters and the load upserts.

Backends differ only in their placeholder (`?` for SQLite, `$1…` for PostgreSQL), so each
builder takes a `placeholder(n)` function. Column names come from constants here, never from
the caller; every value is bound.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from frsync.domain import Principal
from frsync.store.base import FrQuery, LoadData
from frsync.store.rows import (
    ACCOUNT_COLUMNS,
    CHANNEL_COLUMNS,
    FR_COLUMNS,
    ITEM_COLUMNS,
    SOURCE_COLUMNS,
    TOKEN_COLUMNS,
)

Placeholder = Callable[[int], str]


class _Where:
    """Collects conditions and their bound values, numbering placeholders as it goes."""

    def __init__(self, placeholder: Placeholder) -> None:
        self.placeholder = placeholder
        self.conditions: list[str] = []
        self.params: list[Any] = []

    def bind(self, value: Any) -> str:
        self.params.append(value)
        return self.placeholder(len(self.params))

    def add(self, condition: str) -> None:
        self.conditions.append(condition)

    def sql(self) -> str:
        return " AND ".join(self.conditions)


def _where(principal: Principal, query: FrQuery, placeholder: Placeholder) -> _Where:
    where = _Where(placeholder)
    where.add(f"{principal.scope_column} = {where.bind(principal.scope_id)}")
    if query.since_id is not None:
        where.add(f"id > {where.bind(query.since_id)}")
    if query.order_id is not None:
        where.add(f"order_id = {where.bind(query.order_id)}")
    if query.source_id is not None:
        where.add(f"source_id = {where.bind(query.source_id)}")
    if query.fr_numbers:
        marks = ", ".join(where.bind(n) for n in query.fr_numbers)
        where.add(f"fulfillment_request_number IN ({marks})")
    if query.statuses:
        marks = ", ".join(where.bind(s) for s in query.statuses)
        where.add(f"status IN ({marks})")
    if query.accounting_synced is True:
        where.add("accounting_synced = TRUE")
    elif query.accounting_synced is False:
        where.add("(accounting_synced IS NULL OR accounting_synced = FALSE)")
    if query.has_accounting_error is True:
        where.add("(accounting_error IS NOT NULL AND accounting_error <> '')")
    elif query.has_accounting_error is False:
        where.add("(accounting_error IS NULL OR accounting_error = '')")
    return where


def list_sql(
    principal: Principal, query: FrQuery, columns: Sequence[str], *, placeholder: Placeholder
) -> tuple[str, list[Any]]:
    where = _where(principal, query, placeholder)
    limit = where.bind(query.page_size)
    offset = where.bind((query.page_number - 1) * query.page_size)
    sql = (
        f"SELECT {', '.join(columns)} FROM fulfillment_requests"
        f" WHERE {where.sql()} ORDER BY id LIMIT {limit} OFFSET {offset}"
    )
    return sql, where.params


def count_sql(
    principal: Principal, query: FrQuery, *, placeholder: Placeholder
) -> tuple[str, list[Any]]:
    where = _where(principal, query, placeholder)
    return f"SELECT COUNT(*) FROM fulfillment_requests WHERE {where.sql()}", where.params


def _upsert(
    table: str,
    columns: Sequence[str],
    conflict: str,
    placeholder: Placeholder,
    keep: Sequence[str] = (),
) -> str:
    marks = ", ".join(placeholder(n) for n in range(1, len(columns) + 1))
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c != conflict and c not in keep)
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"
        f" ON CONFLICT ({conflict}) DO UPDATE SET {updates}"
    )


def load_statements(
    batch: LoadData, *, placeholder: Placeholder
) -> Iterator[tuple[str, list[tuple[Any, ...]]]]:
    """(sql, rows) pairs in foreign-key order. An FR's items are replaced by the batch's."""
    p = placeholder
    yield _upsert("accounts", ACCOUNT_COLUMNS, "id", p), batch.accounts
    yield _upsert("sources", SOURCE_COLUMNS, "id", p), batch.sources
    yield _upsert("channels", CHANNEL_COLUMNS, "id", p), batch.channels
    yield _upsert("fulfillment_requests", FR_COLUMNS, "id", p), batch.fulfillment_requests
    fr_ids = [(row[0],) for row in batch.fulfillment_requests]
    yield f"DELETE FROM fulfillment_request_items WHERE fulfillment_request_id = {p(1)}", fr_ids
    yield _upsert("fulfillment_request_items", ITEM_COLUMNS, "id", p), batch.items
    # A token loaded again keeps its id, creation time and any revocation.
    yield _upsert("api_tokens", TOKEN_COLUMNS, "token_hash", p, keep=("created_at",)), batch.tokens
