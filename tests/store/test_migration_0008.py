"""Migration 0008 moves every FR's accounting state to its own table and back, intact.

A database holding FRs at revision 0007 (accounting columns on `fulfillment_requests`) is
upgraded: each FR reads the same through the two tables, and the accounting table's copies of
the scope columns and status equal the FR's. Downgraded, the wide table holds it all again;
upgraded once more, the same again. On SQLite and on PostgreSQL.
"""

from __future__ import annotations

from typing import Any

from alembic import command

from frsync.store.upgrade import alembic_config
from tests.store.raw_database import Database

# synced, external id, error, synced at: every kind of state the columns can hold.
STATES = [
    (None, None, None, None),
    (True, "QB-INV-1", None, 1_700_000_000_000),
    (False, None, "Vendor not mapped", None),
    (False, "QB-INV-2", "", None),
    (None, None, "Rate limited", None),
    (True, "QB-INV-3", "", 1_700_000_100_000),
]
FRS = 60
_FR_0007 = (
    "id, fulfillment_request_number, account_id, source_id, order_id, channel_id, status,"
    " generated_at, sent_at, acknowledged_at, updated_at, accounting_synced,"
    " external_accounting_id, accounting_error, accounting_synced_at"
)
_INSERT_FR = f"INSERT INTO fulfillment_requests ({_FR_0007}) VALUES ({', '.join(['?'] * 15)})"
_READ_0007 = f"SELECT {_FR_0007} FROM fulfillment_requests ORDER BY id"
_READ_0008 = (
    "SELECT f.id, f.fulfillment_request_number, f.account_id, f.source_id, f.order_id,"
    " f.channel_id, f.status, f.generated_at, f.sent_at, f.acknowledged_at, a.updated_at,"
    " a.accounting_synced, a.external_accounting_id, a.accounting_error,"
    " a.accounting_synced_at FROM fulfillment_requests AS f"
    " JOIN fulfillment_request_accounting AS a ON a.id = f.id ORDER BY f.id"
)
_COPIES = (
    "SELECT f.account_id, f.source_id, f.channel_id, f.status,"
    " a.account_id, a.source_id, a.channel_id, a.status"
    " FROM fulfillment_requests AS f JOIN fulfillment_request_accounting AS a ON a.id = f.id"
)


def _frs() -> list[tuple[Any, ...]]:
    rows = []
    for fr_id in range(1, FRS + 1):
        synced, ext, error, synced_at = STATES[fr_id % len(STATES)]
        account = 1 + fr_id % 2
        channel = None if fr_id % 3 == 0 else 20 + account
        status = ("Processed", "Sent", "Acknowledged")[fr_id % 3]
        rows.append((fr_id, f"FR-{fr_id}", account, 10 + account, 5000 + fr_id, channel, status,
                     1000 + fr_id, 2000 + fr_id, None, 10_000 + fr_id, synced, ext, error,
                     synced_at))  # fmt: skip
    return rows


_SETUP = [
    ("INSERT INTO accounts (id, name) VALUES (?, ?)", [(1, "A"), (2, "B")]),
    ("INSERT INTO sources (id, account_id, name) VALUES (?, ?, ?)", [(11, 1, "S"), (12, 2, "T")]),
    ("INSERT INTO channels (id, account_id, name) VALUES (?, ?, ?)", [(21, 1, "C"), (22, 2, "D")]),
    (_INSERT_FR, _frs()),
]


def test_every_frs_accounting_state_survives_the_upgrade_and_the_downgrade(empty_url: str) -> None:
    config = alembic_config(empty_url)
    command.upgrade(config, "0007_patch_batch")
    database = Database(empty_url)
    database.write(_SETUP)
    before = database.read(_READ_0007)
    assert len(before) == FRS

    command.upgrade(config, "0008_narrow_accounting")
    assert database.read(_READ_0008) == before
    for row in database.read(_COPIES):
        assert row[:4] == row[4:]

    command.downgrade(config, "0007_patch_batch")
    assert database.read(_READ_0007) == before

    command.upgrade(config, "head")
    assert database.read(_READ_0008) == before
