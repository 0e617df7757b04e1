"""Large, realistic, reproducible data (`frsync demo --size N`, the benchmarks).

Six accounts of very different sizes, each with its own sources (suppliers, 3PLs) and
channels (stores, marketplaces); the first two are the small demo's, so the README's
examples keep working on a large database. FR ids grow with time, as they do in production.
Accounting states follow a connector that runs daily: most older FRs are synced, some carry
an error, canceled ones are never synced, and the newest few percent are not yet pushed.

The same seed always gives the same data, byte for byte.
"""

from __future__ import annotations

import bisect
import itertools
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec

from frsync import demo
from frsync.fixture import Fixture, FulfillmentRequestIn, ItemIn, fixture_to_rows, fr_rows
from frsync.models import format_ms
from frsync.store.base import LoadData

FIRST_FR_ID = 1_000_001  # clear of the small demo's ids, so both can share a database
FIRST_ITEM_ID = 10_000_001
SEED = 20261126
_START_MS = 1_735_689_600_000  # 2025-01-01T00:00:00Z
_SPAN_MS = 695 * 86_400_000  # … to late November 2026
_HOUR = 3_600_000
Progress = Callable[[int], None]  # called with the number of FRs done since the last call

# (id, name, share of all FRs, connector prefix of its external ids)
_ACCOUNTS = [(1, 0.34, "QB"), (2, 0.20, "XERO"), (3, 0.16, "NS"), (4, 0.13, "QB"),
             (5, 0.10, "NS"), (6, 0.07, "XERO")]  # fmt: skip
_MORE_ACCOUNTS = {3: "Cobalt Cycles", 4: "Driftwood Kitchen", 5: "Evergreen Pets",
                  6: "Foxglove Beauty"}  # fmt: skip
_SUPPLIERS = ["North Ridge Distribution", "Harbor Fulfillment 3PL", "Meridian Wholesale",
              "Keystone Direct"]  # fmt: skip
_STORES = ["Shopify", "Amazon", "eBay", "Walmart"]
# Status names with their share of FRs.
_STATUSES = [("Processed", 0.55), ("Acknowledged", 0.25), ("Processing", 0.08),
             ("Unprocessed", 0.04), ("Canceled", 0.04), ("Failed", 0.02), ("Voided", 0.01),
             ("Processing Error", 0.01)]  # fmt: skip
_ERRORS = [*demo.ERRORS, "Customer 'Walk-in' is inactive in Xero",
           "Accounting period is closed for this date", "Duplicate document number"]  # fmt: skip
_WORDS = ["Trail", "Summit", "Harbor", "Cedar", "Granite", "Linen", "Copper", "Meadow"]
_THINGS = ["Tent", "Jacket", "Mug", "Lamp", "Blanket", "Bottle", "Leash", "Serum"]


def scopes() -> dict[str, list[dict[str, Any]]]:
    """Accounts, sources and channels: the small demo's, plus four more accounts."""
    accounts = [*demo.ACCOUNTS, *({"id": i, "name": n} for i, n in _MORE_ACCOUNTS.items())]
    sources, channels = list(demo.SOURCES), list(demo.CHANNELS)
    for account in _MORE_ACCOUNTS:
        for k, name in enumerate(_SUPPLIERS[: 1 + account % 4]):
            sources.append({"id": 100 + 10 * account + k, "accountId": account, "name": name})
        for k, store in enumerate(_STORES[: 2 + account % 3]):
            name = f"{_MORE_ACCOUNTS[account].split()[0]} {store}"
            channels.append({"id": 200 + 10 * account + k, "accountId": account, "name": name})
    return {"accounts": accounts, "sources": sources, "channels": channels}


class _Weighted:
    """Pick from `choices` with the given weights, fast (one random number, one bisect)."""

    def __init__(self, choices: list[Any], weights: list[float]) -> None:
        self.choices = choices
        self.cumulative = list(itertools.accumulate(weights))

    def pick(self, rng: random.Random) -> Any:
        point = rng.random() * self.cumulative[-1]
        return self.choices[bisect.bisect_right(self.cumulative, point)]


class _Owners:
    """Which account, source and channel an FR belongs to. Bigger ones come first."""

    def __init__(self) -> None:
        data = scopes()
        self.account = _Weighted([a for a, _, _ in _ACCOUNTS], [w for _, w, _ in _ACCOUNTS])
        self.prefix = {a: p for a, _, p in _ACCOUNTS}
        self.source = {a: self._skewed(data["sources"], a) for a, _, _ in _ACCOUNTS}
        # None: an order entered by hand, with no sales channel.
        self.channel = {a: self._skewed(data["channels"], a, none=0.08) for a, _, _ in _ACCOUNTS}

    @staticmethod
    def _skewed(rows: list[dict[str, Any]], account: int, none: float = 0.0) -> _Weighted:
        ids: list[int | None] = [r["id"] for r in rows if r["accountId"] == account]
        weights = [1 / (rank + 1) for rank in range(len(ids))]
        if none:
            ids.append(None)
            weights.append(none * sum(weights))
        return _Weighted(ids, weights)


def _items(rng: random.Random, fr_id: int, first: int, count: int) -> list[ItemIn]:
    items = []
    for k in range(count):
        word, thing = rng.choice(_WORDS), rng.choice(_THINGS)
        items.append(ItemIn(
            id=first + k, sku=f"{word[:3].upper()}-{thing[:3].upper()}-{rng.randint(1, 99):02d}",
            title=f"{word} {thing.lower()}", quantity=rng.randint(1, 4),
            cost=round(rng.uniform(2, 180), 2), order_item_id=fr_id * 10 + k,
        ))  # fmt: skip
    return items


def _accounting(
    fr: FulfillmentRequestIn, rng: random.Random, newest: bool, prefix: str, synced_at: str
) -> None:
    """Most FRs synced; errors linger; canceled ones never synced; the newest mostly not yet."""
    if fr.status in ("Canceled", "Voided"):
        return
    roll = rng.random()
    synced, errored = (0.20, 0.30) if newest else (0.88, 0.94)
    if roll < synced:
        fr.accounting_synced, fr.external_accounting_id = True, f"{prefix}-{fr.id}"
        fr.accounting_synced_at = fr.updated_at = synced_at
        for k, item in enumerate(fr.items, start=1):
            item.external_accounting_item_id = f"{prefix}-{fr.id}-{k}"
    elif roll < errored:
        fr.accounting_synced, fr.accounting_error = False, rng.choice(_ERRORS)
        fr.updated_at = synced_at  # when the connector tried
    elif roll < errored + 0.04 and not newest:
        fr.accounting_synced = False  # pushed once, then reset by hand


def fulfillment_requests(count: int, seed: int = SEED) -> Iterator[FulfillmentRequestIn]:
    """`count` FRs with 3 items each on average (1 to 5), ids from FIRST_FR_ID upward."""
    rng, owners = random.Random(seed), _Owners()
    statuses = _Weighted([s for s, _ in _STATUSES], [w for _, w in _STATUSES])
    item_id = FIRST_ITEM_ID
    for n in range(count):
        fr_id = FIRST_FR_ID + n
        account = owners.account.pick(rng)
        generated = _START_MS + n * _SPAN_MS // max(count, 1) + rng.randrange(_HOUR)
        status = statuses.pick(rng)
        fr = FulfillmentRequestIn(
            id=fr_id, account_id=account, source_id=owners.source[account].pick(rng),
            channel_id=owners.channel[account].pick(rng),
            order_id=3_000_000 + n * 7 // 8,  # one order in eight is split over two FRs
            fulfillment_request_number=f"FR-{fr_id}", status=status,
            generated_at=format_ms(generated),
            sent_at=None if status == "Unprocessed" else format_ms(generated + _HOUR),
            acknowledged_at=format_ms(generated + 2 * _HOUR) if status == "Acknowledged" else None,
            items=_items(rng, fr_id, item_id, 1 + n * 3 % 5),
        )  # fmt: skip
        fr.updated_at = fr.acknowledged_at or fr.sent_at or fr.generated_at
        item_id += len(fr.items)
        newest = n >= count * 0.97
        _accounting(fr, rng, newest, owners.prefix[account], format_ms(generated + 3 * _HOUR))
        yield fr


def load_batches(
    count: int, *, seed: int = SEED, batch_size: int = 5000, progress: Progress | None = None
) -> Iterator[LoadData]:
    """For `Store.load`: the scopes, then `count` FRs in batches of `batch_size`."""
    yield fixture_to_rows(msgspec.convert(scopes(), type=Fixture), now=0)
    batch = LoadData()
    for fr in fulfillment_requests(count, seed):
        row, items = fr_rows(fr, f"generated FR {fr.id}")
        batch.fulfillment_requests.append(row)
        batch.items.extend(items)
        if len(batch.fulfillment_requests) == batch_size:
            yield batch
            if progress:
                progress(batch_size)
            batch = LoadData()
    yield batch
    if progress:
        progress(len(batch.fulfillment_requests))


def accounts_path(jsonl: Path) -> Path:
    """Where `write_jsonl` puts the scopes file: `x.jsonl` → `x.accounts.json`."""
    return jsonl.with_name(jsonl.name.removesuffix(".jsonl") + ".accounts.json")


def write_jsonl(
    path: Path, count: int, *, seed: int = SEED, progress: Progress | None = None
) -> Path:
    """Write `count` FRs to `path` (JSON Lines) and the scopes beside it; returns the
    scopes file's path. The two load together: `frsync load SCOPES.json FRS.jsonl`."""
    scopes_file = accounts_path(path)
    scopes_file.write_bytes(msgspec.json.format(msgspec.json.encode(scopes())) + b"\n")
    encode = msgspec.json.Encoder().encode_into
    buffer = bytearray()
    with path.open("wb") as out:
        for n, fr in enumerate(fulfillment_requests(count, seed), start=1):
            encode(fr, buffer, len(buffer))
            buffer.extend(b"\n")
            if n % 5000 == 0 or n == count:
                out.write(buffer)
                buffer.clear()
                if progress:
                    progress(5000 if n % 5000 == 0 else n % 5000)
    return scopes_file
