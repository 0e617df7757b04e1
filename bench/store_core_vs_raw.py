"""The PATCH transaction through raw sqlite3 (what store/sqlite.py does) vs SQLAlchemy Core.

`python -m bench.store_core_vs_raw [--json]`

Both sides run the same transaction on copies of the same benchmark database, one FR after
another on one connection, with the same pragmas (WAL, synchronous=NORMAL) and the write
lock taken up front (BEGIN IMMEDIATE): read the FR's accounting state and its items, plan
the change (`domain.plan_accounting_sync`, shared), update the FR and its items, append the
history entry. Raw is `SqliteStore.sync_accounting` itself. Core uses statements built once
(so its compiled-statement cache is warm), as a Core store would. Rounds alternate so both
sides see the same machine noise; the median round counts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import time
from pathlib import Path
from typing import Any

import msgspec
from sqlalchemy import Connection, bindparam, create_engine, event, insert, select, update

from bench import dataset
from frsync.domain import (
    AccountingPatch,
    AccountingPlan,
    AccountingState,
    PatchItem,
    Principal,
)
from frsync.store.base import Audit
from frsync.store.schema import accounting_history as history_t
from frsync.store.schema import fulfillment_request_accounting as state_t
from frsync.store.schema import fulfillment_request_items as items_t
from frsync.store.sqlite import SqliteStore

DATA = Path(__file__).parent / ".data" / "suite"
TRANSACTIONS = 3000
ROUNDS = 5

_STATE = select(
    state_t.c.account_id, state_t.c.source_id, state_t.c.channel_id, state_t.c.accounting_synced,
    state_t.c.external_accounting_id, state_t.c.accounting_error, state_t.c.accounting_synced_at,
).where(state_t.c.id == bindparam("fr_id"))  # fmt: skip
_ITEMS = select(items_t.c.id, items_t.c.external_accounting_item_id).where(
    items_t.c.fulfillment_request_id == bindparam("fr_id")
)
_ITEM_UPDATE = (
    update(items_t)
    .where(items_t.c.id == bindparam("item_id"))
    .values(external_accounting_item_id=bindparam("ext"))
)
_HISTORY = insert(history_t)


def _patch(fr_id: int, n: int) -> tuple[Principal, AccountingPatch]:
    k = (fr_id - 1) % dataset.TOKENS
    principal = Principal(k + 1, "source", dataset.scope_of(k).source)
    if dataset.token_type_of(k) != "source":
        principal = Principal(k + 1, "account", dataset.scope_of(k).account)
    items = [PatchItem(i, f"QB-LINE-{i}-{n}") for i in dataset.item_ids(fr_id)]
    return principal, AccountingPatch(True, f"QB-INV-{fr_id}-{n}", None, items)


def _plan(fr_id: int, n: int) -> tuple[AccountingPlan, Audit]:
    """The plan function a PATCH of `fr_id` hands the store, and its audit record."""
    principal, patch = _patch(fr_id, n)
    now = int(time.time() * 1000)
    audit = Audit(principal.token_id, principal.token_type, "bench", now)
    return AccountingPlan(principal, patch, now), audit


def _fr_ids(n: int) -> list[int]:
    return [1 + (i * 7919) % dataset.FRS for i in range(n)]


def time_raw(path: Path, n: int) -> float:
    store = SqliteStore(str(path))

    async def go() -> float:
        started = time.perf_counter()
        for index, fr_id in enumerate(_fr_ids(TRANSACTIONS)):
            plan, audit = _plan(fr_id, n * TRANSACTIONS + index)
            await store.sync_accounting(fr_id, plan, audit)
        return time.perf_counter() - started

    try:
        return asyncio.run(go())
    finally:
        asyncio.run(store.close())


def _core_engine(path: Path) -> Any:
    engine = create_engine(f"sqlite:///{path}", connect_args={"isolation_level": None})

    @event.listens_for(engine, "connect")
    def _pragmas(connection: Any, _: Any) -> None:
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON"):
            connection.execute(f"PRAGMA {pragma}")

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _core_transaction(
    connection: Connection, fr_id: int, plan: AccountingPlan, audit: Audit
) -> None:
    with connection.begin():
        row = connection.execute(_STATE, {"fr_id": fr_id}).one()
        items = dict(connection.execute(_ITEMS, {"fr_id": fr_id}).tuples().all())
        state = AccountingState(*row[:3], None if row[3] is None else bool(row[3]), *row[4:], items)
        change = plan(state)
        if change.fr_columns:
            connection.execute(
                update(state_t).where(state_t.c.id == fr_id).values(change.fr_columns)
            )
        if change.item_external_ids:
            rows = [{"item_id": i, "ext": e} for i, e in change.item_external_ids.items()]
            connection.execute(_ITEM_UPDATE, rows)
        connection.execute(_HISTORY, {
            "fulfillment_request_id": fr_id, "at": audit.at, "token_id": audit.token_id,
            "token_type": audit.token_type, "request_id": audit.request_id,
            "changes": msgspec.json.encode(change.diff).decode(),
        })  # fmt: skip


def time_core(path: Path, n: int) -> float:
    engine = _core_engine(path)
    try:
        with engine.connect() as connection:
            started = time.perf_counter()
            for index, fr_id in enumerate(_fr_ids(TRANSACTIONS)):
                plan, audit = _plan(fr_id, n * TRANSACTIONS + index)
                _core_transaction(connection, fr_id, plan, audit)
            return time.perf_counter() - started
    finally:
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    args = parser.parse_args()
    raw_db, core_db = DATA / "micro-raw.db", DATA / "micro-core.db"
    for target in (raw_db, core_db):
        shutil.copyfile(DATA / "pristine.db", target)
    raw, core = [], []
    for n in range(ROUNDS):
        raw.append(time_raw(raw_db, n) / TRANSACTIONS * 1e6)
        core.append(time_core(core_db, n) / TRANSACTIONS * 1e6)
    result = {"raw_us": statistics.median(raw), "core_us": statistics.median(core),
              "transactions": TRANSACTIONS, "rounds": ROUNDS}  # fmt: skip
    result["core_over_raw"] = result["core_us"] / result["raw_us"]
    if args.json:
        print(json.dumps(result))
    else:
        print(f"raw sqlite3: {result['raw_us']:.1f} µs per PATCH transaction")
        print(f"SQLAlchemy Core: {result['core_us']:.1f} µs ({result['core_over_raw']:.2f}× raw)")


if __name__ == "__main__":
    main()
