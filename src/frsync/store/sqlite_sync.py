"""The PATCH's write on SQLite: every PATCH waiting in a writer batch applied in four
statements, however many there are.

Why: the sqlite3 module lets go of the GIL for every step of every statement, and the writer
thread (store/sqlite_writer.py) then has to win it back from a busy event loop. With seven
to eleven steps per PATCH (savepoints, the state read row by row, an update per item) the
writer spent three quarters of its time off the CPU, waiting for the GIL, and the PATCHes
queued behind it: under load its batches held 23 of the 32 connections' requests while it
used a quarter of a core.
Here a batch reads every state in one JSON row, decides each PATCH in Python
(`AccountingPlan`: domain.py, the PL/pgSQL function's twin), and writes the accounting rows,
the items and the history entries with one statement each, from JSON arrays.

Each PATCH is still all or nothing: a refused one (not found, bad items) is decided before
any write and writes nothing. If a statement fails, the writer rolls the batch's savepoint
back and runs each PATCH alone (`SyncAccounting.__call__`), so one bad PATCH fails alone.
Two PATCHes of the same FR in one batch are applied in turn: the second is planned on the
state the first left (`_rounds`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from frsync.domain import AccountingPlan, AccountingState
from frsync.store.base import Audit
from frsync.store.rows import HISTORY_COLUMNS, accounting_state
from frsync.store.sqlite_writer import Outcome

# The accounting columns a PATCH writes, in the order of `_ACCOUNTING_UPDATE`'s array.
_WRITTEN = (
    "accounting_synced",
    "external_accounting_id",
    "accounting_error",
    "accounting_synced_at",
    "updated_at",
)

# Each FR's state and its items' external ids, as one JSON array of
# [id, account, source, channel, synced, external id, error, synced at, [[item, ext id]…]].
# (`json(…)` around the item subquery: a subquery's result loses its JSON subtype and would
# be embedded as a string.)
_STATES_SQL = (
    "SELECT json_group_array(json_array(a.id, a.account_id, a.source_id, a.channel_id,"
    " a.accounting_synced, a.external_accounting_id, a.accounting_error, a.accounting_synced_at,"
    " json((SELECT json_group_array(json_array(i.id, i.external_accounting_item_id))"
    " FROM fulfillment_request_items AS i WHERE i.fulfillment_request_id = a.id))))"
    " FROM fulfillment_request_accounting AS a WHERE a.id IN (SELECT value FROM json_each(?))"
)


def _from_json(columns: Sequence[str], first: int) -> str:
    """`column = ` the array's element at its place, from `first` on (0 holds the row's id)."""
    return ", ".join(
        f"{column} = json_extract(j.value, '$[{n}]')" for n, column in enumerate(columns, first)
    )


# Looped over the JSON array, each row found by primary key (SQLite ≥ 3.33: UPDATE … FROM).
_ACCOUNTING_UPDATE = (
    f"UPDATE fulfillment_request_accounting AS a SET {_from_json(_WRITTEN, 1)}"
    " FROM json_each(?) AS j WHERE a.id = json_extract(j.value, '$[0]')"
)
_ITEMS_UPDATE = (
    f"UPDATE fulfillment_request_items AS i SET {_from_json(['external_accounting_item_id'], 1)}"
    " FROM json_each(?) AS j WHERE i.id = json_extract(j.value, '$[0]')"
)
_HISTORY_COLUMNS = ("fulfillment_request_id", *HISTORY_COLUMNS)
_HISTORY_INSERT = (
    f"INSERT INTO accounting_history ({', '.join(_HISTORY_COLUMNS)}) SELECT "
    + ", ".join(f"json_extract(value, '$[{n}]')" for n in range(len(_HISTORY_COLUMNS)))
    + " FROM json_each(?) ORDER BY key"  # entries get their ids in the PATCHes' order
)


def json_param(value: Any) -> str:
    """`value` as JSON text, to bind for the JSON functions (json_each) of a statement that
    applies many rows at once."""
    return msgspec.json.encode(value).decode()  # text: SQLite's JSON functions take no BLOB


@dataclass(frozen=True, slots=True)
class SyncAccounting:
    """One PATCH, as a job of the SQLite writer thread."""

    fr_id: int
    plan: AccountingPlan
    audit: Audit

    def __call__(self, db: sqlite3.Connection) -> None:
        """Alone (the writer's fallback when a batch's statement failed)."""
        ((applied, error),) = apply_all(db, [self])
        if not applied:
            raise error

    @staticmethod
    def run_batch(db: sqlite3.Connection, syncs: Sequence[SyncAccounting]) -> list[Outcome]:
        return apply_all(db, syncs)


def apply_all(db: sqlite3.Connection, syncs: Sequence[SyncAccounting]) -> list[Outcome]:
    """Apply `syncs` in order, inside the caller's transaction; each one's outcome."""
    outcomes: list[Outcome] = [(True, None)] * len(syncs)
    for entries in _rounds(list(enumerate(syncs))):
        _apply_round(db, entries, outcomes)
    return outcomes


def _rounds(
    entries: list[tuple[int, SyncAccounting]],
) -> Iterator[list[tuple[int, SyncAccounting]]]:
    """The first PATCH of each FR, then the next of each, and so on: in a round every FR is
    read once, before any of the round's writes."""
    while entries:
        now: list[tuple[int, SyncAccounting]] = []
        later: list[tuple[int, SyncAccounting]] = []
        seen: set[int] = set()
        for entry in entries:
            (later if entry[1].fr_id in seen else now).append(entry)
            seen.add(entry[1].fr_id)
        yield now
        entries = later


def _apply_round(
    db: sqlite3.Connection, entries: list[tuple[int, SyncAccounting]], outcomes: list[Outcome]
) -> None:
    fr_ids = json_param([sync.fr_id for _, sync in entries])
    (found,) = db.execute(_STATES_SQL, (fr_ids,)).fetchone()
    states = {row[0]: _state(row) for row in msgspec.json.decode(found)}
    accounting: list[list[Any]] = []
    items: list[tuple[int, str | None]] = []
    history: list[tuple[Any, ...]] = []
    for index, sync in entries:
        state = states.get(sync.fr_id)
        try:
            change = sync.plan(state)
        except Exception as error:  # refused: this PATCH writes nothing
            outcomes[index] = (False, error)
            continue
        if not change.fr_columns or state is None:
            continue  # nothing changes (a found FR always has a state)
        columns = change.fr_columns  # what changes; the rest is written as it was
        accounting.append(
            [sync.fr_id, *(columns[c] if c in columns else getattr(state, c) for c in _WRITTEN)]
        )
        items.extend(change.item_external_ids.items())
        if change.diff:  # a PATCH that changes nothing leaves no history entry (SPEC §2)
            audit = sync.audit
            entry = (audit.at, audit.token_id, audit.token_type, audit.request_id)
            history.append((sync.fr_id, *entry, json_param(change.diff)))
    for sql, rows in (
        (_ACCOUNTING_UPDATE, accounting),
        (_ITEMS_UPDATE, items),
        (_HISTORY_INSERT, history),
    ):
        if rows:
            db.execute(sql, (json_param(rows),))


def _state(row: list[Any]) -> AccountingState:
    # [id, account, source, channel, synced, external id, error, synced at, [[item, ext]…]]
    return accounting_state(row[1:8], {item: external for item, external in row[8]})
