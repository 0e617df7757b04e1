"""The list and count queries use the indexes they were designed for (SQLite's plans).

Without ANALYZE statistics SQLite's plans depend on the schema and the SQL text only (and on
the indexes the SQLite store names), so an empty database shows the plans a large one gets.
Every combination of filters, for every token type, must search an index (never scan the
table) and list in index order (never sort, except the few rows an order id or FR numbers
find); each filter uses its own index.
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from frsync.domain import Principal
from frsync.models import TokenType
from frsync.store import queries
from frsync.store.base import FrQuery
from frsync.store.rows import FR_SELECT

FILTERS: dict[str, Any] = {
    "since_id": 5,
    "order_id": 7,
    "fr_numbers": ("FR-1", "FR-2"),
    "source_id": 10,
    "statuses": ("Processed",),
    "accounting_synced": False,
    "has_accounting_error": True,
}
PRINCIPALS = [Principal(1, kind, 10) for kind in ("account", "source", "channel")]


@pytest.fixture(scope="module")
def db(sqlite_template: Path) -> Iterator[sqlite3.Connection]:
    connection = sqlite3.connect(sqlite_template)
    yield connection
    connection.close()


def plan(db: sqlite3.Connection, sql: str, params: list[Any]) -> str:
    return " | ".join(row[3] for row in db.execute(f"EXPLAIN QUERY PLAN {sql}", params))


def list_plan(db: sqlite3.Connection, principal: Principal, **filters: Any) -> str:
    query = FrQuery(**filters)
    sql, params = queries.list_sql(principal, query, FR_SELECT, placeholder=_q, hints=True)
    return plan(db, sql, params)


def count_plan(db: sqlite3.Connection, principal: Principal, **filters: Any) -> str:
    return plan(db, *queries.count_sql(principal, FrQuery(**filters), placeholder=_q, hints=True))


def _scans_a_table(shown: str) -> bool:
    """A step reading a whole table (`SCAN f`, `SCAN a`: the FRs or their accounting state),
    not SQLite's one constant row of a sum of counts."""
    return any(
        step.startswith("SCAN ") and step != "SCAN CONSTANT ROW" for step in shown.split(" | ")
    )


def _q(_: int) -> str:
    return "?"


def _variants() -> list[dict[str, Any]]:
    names = list(FILTERS)
    subsets = itertools.chain.from_iterable(
        itertools.combinations(names, n) for n in range(len(names) + 1)
    )
    variants = [{name: FILTERS[name] for name in subset} for subset in subsets]
    more = [{"accounting_synced": True}, {"has_accounting_error": False},
            {"statuses": ("Processed", "Failed")},
            {"accounting_synced": True, "has_accounting_error": False, "source_id": 3},
            # Counted directly (a few rows): the accounting state joined for its term.
            {"order_id": 7, "has_accounting_error": False},
            {"fr_numbers": ("FR-1",), "accounting_synced": True}]  # fmt: skip
    return variants + more


@pytest.mark.parametrize("principal", PRINCIPALS, ids=lambda p: p.token_type)
def test_no_combination_of_filters_scans_the_table_or_sorts(
    db: sqlite3.Connection, principal: Principal
) -> None:
    for filters in _variants():
        few = "order_id" in filters or "fr_numbers" in filters  # sorting a few rows is fine
        for shown in (list_plan(db, principal, **filters), count_plan(db, principal, **filters)):
            assert not _scans_a_table(shown), (filters, shown)
            assert few or "TEMP B-TREE" not in shown, (filters, shown)


@pytest.mark.parametrize(
    ("kind", "filters", "index"),
    [
        ("account", {"since_id": 9}, "ix_fr_account_id (account_id=? AND id>?)"),
        ("account", {"since_id": 9, "accounting_synced": False},
         "ix_fr_account_not_synced (account_id=? AND id>?)"),
        ("source", {"since_id": 9, "accounting_synced": False},
         "ix_fr_source_not_synced (source_id=? AND id>?)"),
        ("channel", {"has_accounting_error": True}, "ix_fr_channel_has_error (channel_id=?)"),
        ("account", {"statuses": ("Failed",)}, "ix_fr_account_status (account_id=? AND status=?)"),
        ("account", {"source_id": 11}, "ix_fr_account_source (account_id=? AND source_id=?)"),
        ("channel", {"source_id": 11}, "ix_fr_channel_source (channel_id=? AND source_id=?)"),
        # The partial indexes carry status and source: they answer those filters too.
        ("account", {"accounting_synced": False, "statuses": ("Processed", "Acknowledged")},
         "ix_fr_account_not_synced (account_id=?)"),
        ("account", {"accounting_synced": False, "source_id": 11},
         "ix_fr_account_not_synced (account_id=?)"),
        ("source", {"has_accounting_error": True, "statuses": ("Processed",)},
         "ix_fr_source_has_error (source_id=?)"),
        ("channel", {"has_accounting_error": True, "accounting_synced": False, "since_id": 3},
         "ix_fr_channel_has_error (channel_id=? AND id>?)"),
        # An order id or FR numbers find a few rows: their index wins over the partial ones.
        ("account", {"order_id": 7, "accounting_synced": False}, "ix_fr_order_id (order_id=?)"),
        ("source", {"fr_numbers": ("FR-1",), "has_accounting_error": True},
         "ix_fr_number (fulfillment_request_number=?)"),
    ],
)  # fmt: skip
def test_each_filter_uses_its_own_index(
    db: sqlite3.Connection, kind: TokenType, filters: dict[str, Any], index: str
) -> None:
    principal = Principal(1, kind, 10)
    # A page's ids come from the index alone where it holds every term (COVERING), its rows
    # by primary key after (store/queries.list_sql).
    shown = list_plan(db, principal, **filters)
    assert f"USING INDEX {index}" in shown or f"USING COVERING INDEX {index}" in shown
    # Counts by status or source alone sum the kept counts (schema.py) instead.
    kept = set(filters) <= {"statuses", "source_id"}
    assert (_KEPT if kept else index) in count_plan(db, principal, **filters)


_KEPT = (
    "SEARCH fulfillment_request_counts USING INDEX sqlite_autoindex_fulfillment_request_counts_1"
)


@pytest.mark.parametrize("principal", PRINCIPALS, ids=lambda p: p.token_type)
def test_counts_on_what_a_patch_never_changes_read_the_kept_counts(
    db: sqlite3.Connection, principal: Principal
) -> None:
    for filters in ({}, {"statuses": ("Processed", "Failed")}, {"source_id": 3},
                    {"source_id": 3, "statuses": ("Processed",)}):  # fmt: skip
        shown = count_plan(db, principal, **filters)
        assert shown.startswith(f"{_KEPT} (scope=? AND scope_id=?"), (filters, shown)
        assert " | " not in shown, (filters, shown)  # that one step, and nothing else


@pytest.mark.parametrize("principal", PRINCIPALS, ids=lambda p: p.token_type)
def test_a_page_read_from_the_end_walks_its_index_backwards_without_sorting(
    db: sqlite3.Connection, principal: Principal
) -> None:
    for filters in ({}, {"statuses": ("Processed",)}, {"source_id": 3}):
        query = FrQuery(page_number=90, page_size=10, **filters)
        assert queries.count_first(query)
        sql, params = queries.list_sql(
            principal, query, FR_SELECT, placeholder=_q, hints=True, total=1000
        )
        assert "DESC" in sql and params[-2:] == [10, 100]  # the tenth page from the end
        shown = plan(db, sql, params)
        assert not _scans_a_table(shown) and "TEMP B-TREE" not in shown, (filters, shown)


def test_dense_accounting_counts_are_kept_counts_minus_index_only_counts(
    db: sqlite3.Connection,
) -> None:
    account = PRINCIPALS[0]
    shown = count_plan(db, account, accounting_synced=True)
    assert _KEPT in shown and "ix_fr_account_not_synced" in shown
    shown = count_plan(db, account, has_accounting_error=False)
    assert _KEPT in shown and "ix_fr_account_has_error" in shown
    # With sinceId the kept counts cannot answer: the whole is read from the scope's index.
    shown = count_plan(db, account, accounting_synced=True, since_id=9)
    assert "COVERING INDEX ix_fr_account_id" in shown and "ix_fr_account_not_synced" in shown


def test_partial_indexes_repeat_the_queries_predicates_word_for_word(
    db: sqlite3.Connection,
) -> None:
    """SQLite uses a partial index only when the query's WHERE has its predicate verbatim."""
    indexes = dict(db.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index'"))
    for scope in ("account", "source", "channel"):
        assert indexes[f"ix_fr_{scope}_not_synced"].endswith(f"WHERE {queries.NOT_SYNCED}")
        assert indexes[f"ix_fr_{scope}_has_error"].endswith(f"WHERE {queries.HAS_ERROR}")
