"""store/sqlite_sync.py: PATCHes applied together, as the writer thread applies a batch, leave
exactly what the same PATCHes applied one by one leave: each one's answer, every FR's
accounting state and item ids, and each FR's history in order.

Drawn: up to 12 PATCHes over the fixture's FRs (another account's and a missing one among
them), so FRs repeat within a batch (the rounds), some PATCHes are refused (not found,
foreign or repeated item ids), and texts carry quotes, backslashes and any Unicode (the
JSON the batch statements carry)."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from msgspec import UNSET

from frsync.contract import AccountingSyncItem, AccountingSyncRequest
from frsync.domain import AccountingPlan, Principal
from frsync.store import Audit
from frsync.store.sqlite_sync import SyncAccounting, apply_all
from tests.support import BASIC_FIXTURE, examples, load_fixture, make_settings

FRS = [fr["id"] for fr in BASIC_FIXTURE["fulfillmentRequests"]]
ITEMS = [item["id"] for fr in BASIC_FIXTURE["fulfillmentRequests"] for item in fr["items"]]
PRINCIPAL = Principal(token_id=1, token_type="account", scope_id=1)
START = 1_780_000_000_000  # ms

texts = st.one_of(
    st.none(),
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12),
    st.sampled_from(['"quoted"', "back\\slash", "[1, 2]", "{}", "ünï 🧾"]),
)
items = st.lists(
    st.builds(
        AccountingSyncItem,
        id=st.sampled_from(ITEMS),
        external_accounting_item_id=st.one_of(st.just(UNSET), texts),
    ),
    max_size=3,
).map(tuple)
# UNSET: the body leaves the field out.
patches = st.builds(
    AccountingSyncRequest,
    accounting_synced=st.one_of(st.just(UNSET), st.none(), st.booleans()),
    external_accounting_id=st.one_of(st.just(UNSET), texts),
    accounting_error=st.one_of(st.just(UNSET), texts),
    items=st.one_of(st.just(UNSET), st.none(), items),
)
batches = st.lists(st.tuples(st.sampled_from([*FRS, 999_999]), patches), min_size=1, max_size=12)


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Path:
    """The migrated template with the basic fixture loaded, once for the module."""
    folder = tmp_path_factory.mktemp("batches")
    shutil.copyfile(sqlite_template, folder / "frsync.db")
    asyncio.run(load_fixture(make_settings(folder), BASIC_FIXTURE))
    return folder / "frsync.db"


def _fresh(loaded: Path) -> sqlite3.Connection:
    db = sqlite3.connect(":memory:", isolation_level=None)
    with sqlite3.connect(loaded) as source:
        source.backup(db)
    db.execute("PRAGMA foreign_keys=ON")
    return db


def _everything(db: sqlite3.Connection) -> dict[str, list[Any]]:
    return {
        "accounting": db.execute(
            "SELECT id, accounting_synced, external_accounting_id, accounting_error,"
            " accounting_synced_at, updated_at FROM fulfillment_request_accounting ORDER BY id"
        ).fetchall(),
        "items": db.execute(
            "SELECT id, external_accounting_item_id FROM fulfillment_request_items ORDER BY id"
        ).fetchall(),
        "history": db.execute(
            "SELECT fulfillment_request_id, at, token_id, token_type, request_id, changes"
            " FROM accounting_history ORDER BY fulfillment_request_id, id"
        ).fetchall(),
    }


def _answers(outcomes: list[tuple[bool, Any]]) -> list[tuple[bool, str, str]]:
    return [(ok, type(value).__name__, str(value)) for ok, value in outcomes]


@hypothesis_settings(
    max_examples=examples(40),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(drawn=batches)
def test_a_batch_leaves_what_the_same_patches_one_by_one_leave(
    loaded: Path, drawn: list[tuple[int, AccountingSyncRequest]]
) -> None:
    syncs = [
        SyncAccounting(
            fr_id,
            AccountingPlan(PRINCIPAL, patch, START + n),
            Audit(PRINCIPAL.token_id, PRINCIPAL.token_type, f"request-{n}", START + n),
        )
        for n, (fr_id, patch) in enumerate(drawn)
    ]
    together, alone = _fresh(loaded), _fresh(loaded)
    try:
        together.execute("BEGIN IMMEDIATE")
        answers_together = _answers(apply_all(together, syncs))
        together.execute("COMMIT")
        answers_alone = []
        for sync in syncs:
            alone.execute("BEGIN IMMEDIATE")
            answers_alone += _answers(apply_all(alone, [sync]))
            alone.execute("COMMIT")
        assert answers_together == answers_alone
        assert _everything(together) == _everything(alone)
    finally:
        together.close()
        alone.close()
