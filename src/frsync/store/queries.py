"""SQL text shared by the SQL backends: the list/count filters and the load upserts.

Backends differ only in their placeholder (`?` for SQLite, `$1…` for PostgreSQL), so each
builder takes a `placeholder(n)` function (store/placeholders.py). Column names come from
constants here, never from the caller; every value is bound.

An FR is two rows (store/schema.py): `f`, the wide table, and `a`, its accounting state with
copies of the scope columns and status. A query is driven by one of them, whose index gives
the order, and reads the other by primary key only where a term or a column needs it.

How the filters meet the indexes (store/schema.py; bench/read_side.py measures them):
- every query is "in this scope, ordered by id", so each scope column has an (scope, id)
  index, and `sinceId` is a range on it: a page costs the same at any depth;
- "not yet synced" and "has an error" have partial indexes on `a` over just those rows,
  (scope, id) plus the status and source (and, for errors, accounting_synced) that other filters
  test, so the connector's page and the platform team's count read only matching entries;
- `filterStatus`, and `filterSourceId` for account and channel tokens, have (scope, column,
  id) indexes;
- `findOrderId` and `frNumbers` are selective: their own indexes find the few rows;
- a count with no filter, or by status and source only, sums the kept counts
  (`fulfillment_request_counts`: FRs per scope, source and status, kept by triggers) instead
  of reading an index entry per FR; "synced" is that sum minus the not-synced entries. With
  that total known, a page past the middle by `filterPageNumber` is read from the end.

SQLite keeps no statistics unless ANALYZE runs, and without them it takes every equality
for equally selective: it may walk a whole scope rather than look up one order, or pick a
(scope, source, id) index over the far smaller partial one. Where that choice matters the
builders name the index (`hints=True`, SQLite's INDEXED BY); PostgreSQL's planner has
statistics and chooses for itself.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from frsync.domain import Principal
from frsync.store.base import FrQuery, LoadData
from frsync.store.placeholders import Placeholder
from frsync.store.rows import (
    ACCOUNT_COLUMNS,
    ACCOUNTING_ROW_COLUMNS,
    CHANNEL_COLUMNS,
    ITEM_COLUMNS,
    SOURCE_COLUMNS,
    TOKEN_COLUMNS,
    WIDE_COLUMNS,
    split_fr_rows,
)

# The partial indexes' predicates. SQLite uses a partial index only when the query's WHERE
# repeats its predicate word for word, so schema.py and the migration use these texts.
NOT_SYNCED = "accounting_synced IS NOT TRUE"  # false or null
HAS_ERROR = "accounting_error <> ''"  # null <> '' is null: neither null nor "" matches
_SYNCED = "accounting_synced IS TRUE"
_NO_ERROR_A = "(a.accounting_error IS NULL OR a.accounting_error = '')"


class _Params:
    """Bound values, numbering placeholders as they are added (across subqueries too)."""

    def __init__(self, placeholder: Placeholder) -> None:
        self.placeholder = placeholder
        self.values: list[Any] = []

    def bind(self, value: Any) -> str:
        self.values.append(value)
        return self.placeholder(len(self.values))


def scope_term(principal: Principal, bind: Callable[[Any], str], table: str = "") -> str | None:
    """The condition that keeps `principal` in its scope; None for an operator, whose scope
    is every account (the console only: the FR endpoints refuse operator tokens)."""
    if principal.is_operator:
        return None
    return f"{table}{principal.scope_column} = {bind(principal.scope_id)}"


# The tables an FR's query reads: the wide table and the accounting state (store/schema.py).
_TABLES = {"f": "fulfillment_requests", "a": "fulfillment_request_accounting"}


def _driver(query: FrQuery) -> str:
    """The table whose index a query walks: the accounting state's partial indexes for the
    connector's and the platform team's filters, the wide table's indexes for the rest."""
    if query.order_id is not None or query.fr_numbers:
        return "f"
    return "a" if query.accounting_synced is False or query.has_accounting_error is True else "f"


def _where(principal: Principal, query: FrQuery, params: _Params, driver: str) -> list[str]:
    """The terms, each on the driver where both tables hold its column."""
    bind = params.bind
    scope = scope_term(principal, bind, f"{driver}.")
    terms = [] if scope is None else [scope]
    if query.since_id is not None:
        terms.append(f"{driver}.id > {bind(query.since_id)}")
    if query.order_id is not None:
        terms.append(f"f.order_id = {bind(query.order_id)}")
    if query.source_id is not None:
        terms.append(f"{driver}.source_id = {bind(query.source_id)}")
    if query.fr_numbers:
        numbers = ", ".join(map(bind, query.fr_numbers))
        terms.append(f"f.fulfillment_request_number IN ({numbers})")
    if query.statuses:
        terms.append(f"{driver}.status IN ({', '.join(map(bind, query.statuses))})")
    if query.accounting_synced is not None:
        terms.append("a." + (_SYNCED if query.accounting_synced else NOT_SYNCED))
    if query.has_accounting_error is not None:
        terms.append(("a." + HAS_ERROR) if query.has_accounting_error else _NO_ERROR_A)
    return terms


def _index(principal: Principal, query: FrQuery) -> str | None:
    """The index SQLite must use, where a statistics-free guess would go wrong."""
    if query.order_id is not None:
        return "ix_fr_order_id"  # a few rows, then sorted
    if query.fr_numbers:
        return "ix_fr_number"
    # The partial indexes hold only these rows; errors are the fewer of the two, and their
    # index also holds accounting_synced for "not synced" to be tested on its entries.
    # An operator's count spans every account: the account index holds every such row.
    scope = "account" if principal.is_operator else principal.token_type
    if query.has_accounting_error is True:
        return f"ix_fr_{scope}_has_error"
    if query.accounting_synced is False:
        return f"ix_fr_{scope}_not_synced"
    return None  # (scope, id), (scope, status, id), (scope, source, id): SQLite picks well


def _reads_other(query: FrQuery, driver: str) -> bool:
    """Whether a term of `_where` is on the table that does not drive: the accounting filters
    are on `a`, the order and number filters on `f`, every other term on the driver."""
    on_accounting = query.accounting_synced is not None or query.has_accounting_error is not None
    on_wide = query.order_id is not None or bool(query.fr_numbers)
    return on_accounting if driver == "f" else on_wide


def _from(principal: Principal, query: FrQuery, terms: list[str], driver: str, hints: bool) -> str:
    """FROM and WHERE: the driver (with its index named, for SQLite), then the other table by
    primary key where a term needs it. CROSS JOIN keeps SQLite's loops in that order;
    PostgreSQL plans it as any inner join."""
    index = _index(principal, query) if hints else None
    sql = f"{_TABLES[driver]} AS {driver}" + (f" INDEXED BY {index}" if index else "")
    other = "a" if driver == "f" else "f"
    if _reads_other(query, driver):
        sql += f" CROSS JOIN {_TABLES[other]} AS {other}"
        terms = [*terms, f"{other}.id = {driver}.id"]
    return f"{sql} WHERE {' AND '.join(terms) or 'TRUE'}"


def list_sql(
    principal: Principal,
    query: FrQuery,
    columns: Sequence[str],
    *,
    placeholder: Placeholder,
    hints: bool = False,
    total: int | None = None,
) -> tuple[str, list[Any]]:
    """One page of `columns` (qualified: rows.FR_SELECT), ordered by id: the page's ids from
    the driver's index, then their two rows by primary key. A deep `filterPageNumber` makes
    the database step over every index entry before the page (OFFSET), but over no row of
    the other table; `sinceId` seeks straight to it.

    `total`, the number of FRs matching `query` (read first where `count_first` says, in the
    same snapshot): a page in the later half is then read backwards from the end, stepping
    over the entries after it, fewer than those before it. The last page costs the first's."""
    params = _Params(placeholder)
    driver = _driver(query)
    terms = _where(principal, query, params, driver)
    size, skip, order = query.page_size, (query.page_number - 1) * query.page_size, "ASC"
    if total is not None and 2 * skip > total:
        size = max(0, min(size, total - skip))  # the entries from the page's start to the end
        skip, order = max(0, total - skip - size), "DESC"
    limit, offset = params.bind(size), params.bind(skip)
    source = _from(principal, query, terms, driver, hints)
    page = (
        f"SELECT {driver}.id FROM {source} ORDER BY {driver}.id {order}"
        f" LIMIT {limit} OFFSET {offset}"
    )
    sql = (
        f"SELECT {', '.join(columns)} FROM {_TABLES['f']} AS f CROSS JOIN {_TABLES['a']} AS a"
        f" WHERE a.id = f.id AND f.id IN ({page}) ORDER BY f.id"
    )
    return sql, params.values


def count_sql(
    principal: Principal, query: FrQuery, *, placeholder: Placeholder, hints: bool = False
) -> tuple[str, list[Any]]:
    """The number of matching FRs, paging ignored. "Synced" and "no error" hold for most
    FRs and have no index of their own: they are counted as everything (the kept counts,
    where no other filter rules them out) minus the few that the partial indexes hold, so
    that no count with one filter reads the table's rows."""
    params = _Params(placeholder)
    parts = []
    for sign, part in _count_terms(query):
        if _kept(part):
            parts.append((sign, _kept_count(principal, part, params)))
            continue
        driver = _driver(part)
        terms = _where(principal, part, params, driver)
        source = _from(principal, part, terms, driver, hints)
        parts.append((sign, f"SELECT COUNT(*) FROM {source}"))
    if len(parts) == 1:
        return parts[0][1], params.values
    total = " ".join(f"{'+' if sign > 0 else '-'} ({sql})" for sign, sql in parts)
    return f"SELECT {total.removeprefix('+ ')}", params.values


def count_first(query: FrQuery) -> bool:
    """Whether a page's query starts with its count (`list_sql`'s `total`): past the first
    page, when the kept counts answer it at once."""
    return query.page_number > 1 and _kept(query)


def _kept(query: FrQuery) -> bool:
    """Whether the kept counts answer `query`: they hold FRs per scope, source and status, as
    the platform sent them, so no other filter may be set."""
    return (
        query.since_id is None
        and query.order_id is None
        and not query.fr_numbers
        and query.accounting_synced is None
        and query.has_accounting_error is None
    )


def _kept_count(principal: Principal, query: FrQuery, params: _Params) -> str:
    """The sum of the scope's kept counts (schema.py, `fulfillment_request_counts`): a few
    rows per source and status, however many FRs. An operator's scope is every account."""
    bind = params.bind
    if principal.is_operator:
        terms = [f"scope = {bind('account')}"]
    else:
        terms = [f"scope = {bind(principal.token_type)}", f"scope_id = {bind(principal.scope_id)}"]
    if query.source_id is not None:
        terms.append(f"source_id = {bind(query.source_id)}")
    if query.statuses:
        terms.append(f"status IN ({', '.join(map(bind, query.statuses))})")
    return (
        "SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT) FROM fulfillment_request_counts"
        f" WHERE {' AND '.join(terms)}"
    )


def _count_terms(query: FrQuery) -> list[tuple[int, FrQuery]]:
    """count(Q) as a signed sum of counts that the indexes answer without reading rows:
    count(B and synced) = count(B) - count(B and not synced), and the same for errors."""
    replace = dataclasses.replace
    if query.order_id is not None or query.fr_numbers:  # a few rows: count them directly
        return [(1, query)]
    if query.accounting_synced is True:
        whole = replace(query, accounting_synced=None)
        part = replace(query, accounting_synced=False)
    elif query.has_accounting_error is False:
        whole = replace(query, has_accounting_error=None)
        part = replace(query, has_accounting_error=True)
    else:
        return [(1, query)]
    return _count_terms(whole) + [(-sign, q) for sign, q in _count_terms(part)]


def _upsert(
    table: str,
    columns: Sequence[str],
    conflict: str,
    placeholder: Placeholder,
    keep: Sequence[str] = (),
    rows: str | None = None,
) -> str:
    """INSERT … ON CONFLICT DO UPDATE of one row, or of the `rows` that a SELECT gives."""
    marks = ", ".join(placeholder(n) for n in range(1, len(columns) + 1))
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c != conflict and c not in keep)
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) {rows or f'VALUES ({marks})'}"
        f" ON CONFLICT ({conflict}) DO UPDATE SET {updates}"
    )


# How a backend sends many rows in one statement: for these columns and rows, the SELECT that
# yields the rows and the one row of parameters it takes.
ManyRows = Callable[[Sequence[str], Sequence[tuple[Any, ...]]], tuple[str, tuple[Any, ...]]]


def load_statements(
    batch: LoadData, *, placeholder: Placeholder, many: ManyRows
) -> Iterator[tuple[str, list[tuple[Any, ...]]]]:
    """(sql, rows) pairs in foreign-key order. An FR's items are replaced by the batch's.

    The batch's FRs go in one statement (`many`): the kept counts' triggers then run once
    per batch on PostgreSQL rather than once per FR (migration 0009), and SQLite saves a
    statement journal per FR. An FR twice in a batch is upserted once, as its last line says,
    which is what one upsert per line would leave."""
    p = placeholder
    yield _upsert("accounts", ACCOUNT_COLUMNS, "id", p), batch.accounts
    yield _upsert("sources", SOURCE_COLUMNS, "id", p), batch.sources
    yield _upsert("channels", CHANNEL_COLUMNS, "id", p), batch.channels
    wide, accounting = split_fr_rows(batch.fulfillment_requests)
    if wide:
        rows, values = many(WIDE_COLUMNS, list({row[0]: row for row in wide}.values()))
        yield _upsert("fulfillment_requests", WIDE_COLUMNS, "id", p, rows=rows), [values]
    yield _upsert("fulfillment_request_accounting", ACCOUNTING_ROW_COLUMNS, "id", p), accounting
    fr_ids = [(row[0],) for row in batch.fulfillment_requests]
    yield f"DELETE FROM fulfillment_request_items WHERE fulfillment_request_id = {p(1)}", fr_ids
    yield _upsert("fulfillment_request_items", ITEM_COLUMNS, "id", p), batch.items
    # A token loaded again keeps its id, creation time and any revocation.
    yield _upsert("api_tokens", TOKEN_COLUMNS, "token_hash", p, keep=("created_at",)), batch.tokens
