"""The demo data set: small, readable, and holding the reference page's example ids
(FR 221 with item 12312), so its `success-1` and `error-1` bodies work verbatim."""

from __future__ import annotations

import itertools
import random
from typing import Any

from frsync.models import OPERATOR, OPERATOR_SCOPE_ID, TokenType

ACCOUNTS = [{"id": 1, "name": "Acme Outdoor"}, {"id": 2, "name": "Birch & Pine Home"}]
SOURCES: list[dict[str, Any]] = [
    {"id": 10, "accountId": 1, "name": "Trailhead Supply"},
    {"id": 11, "accountId": 1, "name": "Summit Wholesale"},
    {"id": 30, "accountId": 2, "name": "Hearth Goods 3PL"},
]
CHANNELS = [
    {"id": 20, "accountId": 1, "name": "Acme Shopify"},
    {"id": 21, "accountId": 1, "name": "Acme Amazon"},
    {"id": 40, "accountId": 2, "name": "Birch & Pine Etsy"},
]
# (sku, title, cost) per source
CATALOG = {
    10: [("TENT-2P", "Two-person tent", 89.5), ("BAG-0C", "Sleeping bag, 0 °C", 54.0),
         ("STOVE-1", "Backpacking stove", 32.25)],
    11: [("PACK-45", "45 L backpack", 71.0), ("POLE-CF", "Carbon trekking poles", 48.75)],
    30: [("MUG-ST", "Stoneware mug", 6.4), ("THROW-W", "Wool throw", 38.0),
         ("CAND-3", "Soy candle, set of 3", 12.9)],
}  # fmt: skip
TOKENS: list[tuple[TokenType, int]] = [
    ("account", 1),
    ("source", 10),
    ("channel", 20),
    ("account", 2),
    (OPERATOR, OPERATOR_SCOPE_ID),  # the console on every account, and the sandbox admin API
]
ERRORS = [
    "Vendor 'Trailhead Supply' is not mapped to a supplier in QuickBooks",
    "Item SKU not found in NetSuite item list",
    "Request rejected due to invalid Id",
]


def _fr(
    fr_id: int, source: dict[str, Any], rng: random.Random, item_ids: list[int]
) -> dict[str, Any]:
    account = source["accountId"]
    channels = [c["id"] for c in CHANNELS if c["accountId"] == account]
    day = 10 + fr_id % 15
    fr: dict[str, Any] = {
        "id": fr_id, "accountId": account, "sourceId": source["id"],
        "channelId": rng.choice([*channels, None]) if fr_id != 221 else 20,
        "orderId": 5000 + fr_id, "fulfillmentRequestNumber": f"FR-{fr_id}",
        "status": rng.choice(["Processed", "Acknowledged", "Processing"]),
        "generatedAt": f"2026-11-{day:02d}T{8 + fr_id % 9:02d}:{fr_id % 60:02d}:00.000Z",
        "sentAt": f"2026-11-{day:02d}T{9 + fr_id % 9:02d}:00:00.000Z",
    }  # fmt: skip
    catalog = CATALOG[source["id"]]
    products = rng.sample(catalog, len(item_ids))
    fr["items"] = [
        {"id": item_id, "sku": sku, "title": title, "quantity": rng.randint(1, 4), "cost": cost,
         "orderItemId": 90000 + item_id}
        for item_id, (sku, title, cost) in zip(item_ids, products, strict=True)
    ]  # fmt: skip
    return fr


def _accounting_state(fr: dict[str, Any], kind: int) -> None:
    """A mix: mostly not yet synced, some synced with external ids, some with an error."""
    if kind == 1:
        fr.update(accountingSynced=True, externalAccountingId=f"PO-{fr['id']}",
                  accountingSyncedAt=fr["sentAt"])  # fmt: skip
        for index, item in enumerate(fr["items"]):
            item["externalAccountingItemId"] = f"PO-{fr['id']}-{index + 1}"
    elif kind == 2:
        fr.update(accountingSynced=False, accountingError=ERRORS[fr["id"] % len(ERRORS)])


def demo_fixture() -> dict[str, Any]:
    """24 FRs over two accounts; FR 221 (item 12312) is Acme's, unsynced, source 10, channel 20."""
    rng = random.Random(221)
    frs = []
    spare_item_ids = (i for i in itertools.count(12300) if i != 12312)
    for fr_id in range(210, 234):
        source = SOURCES[0] if fr_id == 221 else rng.choice(SOURCES)
        count = 1 if fr_id == 221 else rng.randint(1, len(CATALOG[source["id"]]))
        item_ids = [12312] if fr_id == 221 else [next(spare_item_ids) for _ in range(count)]
        fr = _fr(fr_id, source, rng, item_ids)
        if fr_id != 221:
            _accounting_state(fr, fr_id % 4)
        frs.append(fr)
    return {"accounts": ACCOUNTS, "sources": SOURCES, "channels": CHANNELS,
            "fulfillmentRequests": frs}  # fmt: skip
