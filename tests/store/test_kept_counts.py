"""The kept counts (migration 0009) always equal the FRs they count.

Counts with no filter, or by status and source, sum `fulfillment_request_counts` instead of
reading the FRs (store/queries.count_sql); triggers on `fulfillment_requests` keep it. Here
every way an FR is written (inserted, reloaded into another scope or status, deleted) is
followed by the table read back against the FRs themselves, and the count endpoint's store
call against the same count read from the indexes. On SQLite and on PostgreSQL.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest
from alembic import command

from frsync.backends import open_store
from frsync.config import Settings
from frsync.domain import Principal
from frsync.fixture import Fixture, fixture_to_rows
from frsync.models import now_ms
from frsync.store import Store
from frsync.store.base import FrQuery
from frsync.store.rows import FR_COLUMNS
from frsync.store.upgrade import alembic_config
from tests.store.raw_database import Database
from tests.support import fixture_copy, load_fixture

_FR = (
    "INSERT INTO fulfillment_requests (id, fulfillment_request_number, account_id, source_id,"
    " order_id, channel_id, status, generated_at) VALUES (?, ?, ?, ?, ?, ?, ?, 0)"
)
_SETUP = [
    ("INSERT INTO accounts (id, name) VALUES (?, ?)", [(1, "A"), (2, "B")]),
    ("INSERT INTO sources (id, account_id, name) VALUES (?, ?, ?)",
     [(11, 1, "S"), (12, 1, "T"), (13, 2, "U")]),
    ("INSERT INTO channels (id, account_id, name) VALUES (?, ?, ?)", [(21, 1, "C"), (22, 2, "D")]),
]  # fmt: skip
_KEPT = "SELECT scope, scope_id, source_id, status, n FROM fulfillment_request_counts"
_FRS = "SELECT account_id, source_id, channel_id, status FROM fulfillment_requests"
STATUSES = ("Processed", "Sent", "Acknowledged")


def _frs(first: int, count: int) -> list[tuple[Any, ...]]:
    rows = []
    for fr_id in range(first, first + count):
        account = 1 + fr_id % 2
        source = (11 + fr_id % 3 % 2) if account == 1 else 13
        channel = None if fr_id % 5 == 0 else 20 + account
        rows.append((fr_id, f"FR-{fr_id}", account, source, fr_id, channel, STATUSES[fr_id % 3]))
    return rows


def _expected(frs: list[tuple[Any, ...]]) -> dict[tuple[Any, ...], int]:
    """What the kept counts must hold for these FRs: each counted under each of its scopes."""
    counts: Counter[tuple[Any, ...]] = Counter()
    for account, source, channel, status in frs:
        for scope, scope_id in (("account", account), ("source", source), ("channel", channel)):
            if scope_id is not None:
                counts[(scope, scope_id, source, status)] += 1
    return dict(counts)


def _kept(database: Database) -> dict[tuple[Any, ...], int]:
    return {tuple(row[:4]): row[4] for row in database.read(_KEPT)}


def test_the_upgrade_counts_the_frs_there_and_every_write_after_keeps_the_counts(
    empty_url: str,
) -> None:
    config = alembic_config(empty_url)
    command.upgrade(config, "0008_narrow_accounting")
    database = Database(empty_url)
    database.write([*_SETUP, (_FR, _frs(1, 40))])

    command.upgrade(config, "0009_kept_counts")
    assert _kept(database) == _expected(database.read(_FRS)) != {}

    database.write([(_FR, _frs(41, 15))])  # inserted
    assert _kept(database) == _expected(database.read(_FRS))
    moves = [
        ("UPDATE fulfillment_requests SET status = 'Canceled' WHERE id % 4 = 0", [()]),
        ("UPDATE fulfillment_requests SET channel_id = NULL WHERE id % 7 = 0", [()]),
        ("UPDATE fulfillment_requests SET channel_id = 21 WHERE id = 5", [()]),  # had none
        ("UPDATE fulfillment_requests SET source_id = 12 WHERE source_id = 11 AND id < 20", [()]),
        ("UPDATE fulfillment_requests SET generated_at = 7", [()]),  # no count moves
    ]
    for move in moves:
        database.write([move])
        assert _kept(database) == _expected(database.read(_FRS)), move[0]

    database.write([("DELETE FROM fulfillment_requests WHERE account_id = 2", [()])])
    assert _kept(database) == _expected(database.read(_FRS))
    assert not any(key[1] in (2, 13, 22) for key in _kept(database))  # no row left at zero
    database.write([("DELETE FROM fulfillment_requests", [()])])
    assert _kept(database) == {}

    database.write([(_FR, _frs(100, 30))])
    command.downgrade(config, "0008_narrow_accounting")
    command.upgrade(config, "head")
    assert _kept(database) == _expected(database.read(_FRS))


@pytest.fixture
async def store(settings: Settings) -> AsyncIterator[Store]:
    store = await open_store(settings)
    yield store
    await store.close()


PRINCIPALS = [Principal(1, kind, scope_id) for kind, scope_id in
              (("account", 1), ("account", 2), ("source", 10), ("source", 11), ("channel", 20),
               ("channel", 21), ("operator", 0))]  # fmt: skip
FILTERS: list[dict[str, Any]] = [
    {},
    {"statuses": ("Processed",)},
    {"statuses": ("Processed", "Canceled", "Failed")},
    {"source_id": 10},
    {"source_id": 11, "statuses": ("Acknowledged", "Processed")},
    {"accounting_synced": True},
    {"has_accounting_error": False, "statuses": ("Processed",)},
    {"accounting_synced": True, "has_accounting_error": False, "source_id": 10},
]


async def _counts_agree(store: Store) -> None:
    """Each count equals the same count with a `sinceId` below every id, which the kept
    counts do not answer (the indexes count it): the two ways agree for every scope."""
    for principal, filters in itertools.product(PRINCIPALS, FILTERS):
        query = FrQuery(**filters)
        kept = await store.count_fulfillment_requests(principal, query)
        read = await store.count_fulfillment_requests(principal, FrQuery(since_id=0, **filters))
        assert kept == read, (principal, filters)


async def test_counts_by_kept_counts_equal_counts_by_index_after_loads_and_reloads(
    settings: Settings, store: Store
) -> None:
    fixture = fixture_copy()
    await load_fixture(settings, fixture)
    await _counts_agree(store)
    no_filter = FrQuery()
    assert await store.count_fulfillment_requests(PRINCIPALS[0], no_filter) == 8

    # Reloaded: FRs move to another source, channel and status; one more FR comes.
    frs = fixture["fulfillmentRequests"]
    frs[0].update(sourceId=11, status="Failed")
    frs[1].update(channelId=21)
    frs[2].update(channelId=20, status="Canceled")
    frs[3].update(channelId=None)
    frs.append({**frs[4], "id": 229, "fulfillmentRequestNumber": "FR-229", "items": []})
    await load_fixture(settings, fixture)
    await _counts_agree(store)
    assert await store.count_fulfillment_requests(PRINCIPALS[0], no_filter) == 9
    channel_20 = PRINCIPALS[4]
    assert await store.count_fulfillment_requests(channel_20, no_filter) == 5


async def test_every_page_by_number_is_the_same_slice_whether_read_forwards_or_backwards(
    settings: Settings, store: Store
) -> None:
    """Past the middle a page is read from the end (store/queries.list_sql's `total`): each
    page equals its slice of the whole list, the last partial one and those past the end too."""
    await load_fixture(settings, fixture_copy())
    for principal, filters in itertools.product(PRINCIPALS[:-1], FILTERS[:5]):
        whole = await store.list_fulfillment_requests(principal, FrQuery(page_size=500, **filters))
        every = [fr.id for fr in whole]
        for size in (1, 2, 3, 5):
            for number in range(1, len(every) // size + 3):
                query = FrQuery(page_number=number, page_size=size, **filters)
                page = [fr.id for fr in await store.list_fulfillment_requests(principal, query)]
                assert page == every[(number - 1) * size : number * size], (principal, query)


async def test_an_fr_twice_in_one_batch_is_loaded_as_its_last_line_says(store: Store) -> None:
    """A batch's FRs go in one statement: the same id twice must not fail it (PostgreSQL
    refuses to upsert one row twice in a statement), and the later line wins."""
    data = fixture_to_rows(msgspec.convert(fixture_copy(), type=Fixture), now=now_ms())
    first = list(data.fulfillment_requests[0])
    again = list(first)
    again[FR_COLUMNS.index("status")] = "Failed"
    again[FR_COLUMNS.index("source_id")] = 11
    data.fulfillment_requests.append(tuple(again))
    await store.load([data])
    account = PRINCIPALS[0]
    fr = await store.get_fulfillment_request(first[0], account)
    assert fr is not None and (fr.fulfillment_request_status.name, fr.source_id) == ("Failed", 11)
    await _counts_agree(store)
    assert await store.count_fulfillment_requests(account, FrQuery()) == 8
