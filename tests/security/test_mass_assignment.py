"""Family 4 — mass assignment (OWASP API3, broken object property level authorization).

Every property the FR or its items have, or that an attacker might guess, that this
endpoint must not write: sent alone and next to a valid change, at the top level and inside
an item. Each is a 400 naming the field, and the database is unchanged (the valid change
beside it does not land either).
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette

from tests.security.conftest import recording_client
from tests.security.dump import Dumper, rows_changed
from tests.security.tally import Recorder
from tests.support import TOKENS

# Read-only fields of the FR as GET shows it, their storage names, and likely guesses.
TOP_LEVEL: dict[str, Any] = {
    "id": 1, "fulfillmentRequestNumber": "FR-X", "accountId": 2, "sourceId": 30,
    "channelId": 40, "orderId": 1, "fulfillmentRequestStatus": {"name": "Voided"},
    "status": "Voided", "generatedAt": "2020-01-01T00:00:00.000Z", "sentAt": None,
    "acknowledgedAt": None, "updatedAt": "2020-01-01T00:00:00.000Z",
    "accountingSyncedAt": "2020-01-01T00:00:00.000Z", "fulfillmentRequestItems": [],
    "account_id": 2, "source_id": 30, "channel_id": 40, "order_id": 1,
    "accounting_synced": True, "accounting_synced_at": 0, "updated_at": 0,
    "external_accounting_id": "x", "accounting_error": "x", "createdAt": 0, "deletedAt": 0,
    "accountingSyncError": "x", "history": [], "accountingHistory": [], "tokenId": 1,
    "token_type": "account", "requestId": "x", "scopeId": 2, "account": {"id": 2},
    "source": {"id": 30}, "channel": {"id": 40}, "__proto__": {"admin": True},
    "constructor": {"prototype": {}}, "AccountingSynced": True, "accountingsynced": True,
    "accountingSynced ": True, "$set": {"accountId": 2}, "": 1,
}  # fmt: skip
ITEM_LEVEL: dict[str, Any] = {
    "sku": "X", "title": "X", "quantity": 99, "cost": 0, "orderItemId": 1,
    "fulfillmentRequestId": 301, "fulfillment_request_id": 301, "externalAccountingId": "x",
    "external_accounting_item_id": "x", "accountId": 2, "itemId": 1, "ID": 1, "Id": 1,
    "price": 0, "accountingSynced": True, "__proto__": {}, "": 1,
}  # fmt: skip


async def test_read_only_fields_are_refused_at_both_levels(
    app: Starlette, dumper: Dumper, store_name: str
) -> None:
    recorder = Recorder("4 mass assignment", store_name)
    bodies: list[tuple[str, dict[str, Any]]] = []
    for name, value in TOP_LEVEL.items():
        bodies.append((name, {name: value}))
        bodies.append((name, {"accountingSynced": True, "externalAccountingId": "ok", name: value}))
    for name, value in ITEM_LEVEL.items():
        item = {"id": 12312, "externalAccountingItemId": "ok", name: value}
        bodies.append((f"items[0].{name}", {"items": [item]}))
        bodies.append((f"items[0].{name}", {"accountingSynced": True, "items": [item]}))
    for token in ("account1", "source10", "channel20"):  # every token type; all own FR 221
        async with recording_client(app, recorder, TOKENS[token]) as client:
            for field, body in bodies:
                recorder.case()
                before = await dumper.dump()
                answer = await client.patch("/fulfillment-requests/221/accounting-sync", json=body)
                if changed := rows_changed(before, await dumper.dump()):
                    recorder.finding("rows_changed", f"{field}: {changed} rows")
                assert answer.status_code == 400, (field, answer.status_code)
                assert field in [e["field"] for e in answer.json()["errors"]], (field, answer.text)
    recorder.counts.notes.append(f"{len(TOP_LEVEL)} top-level + {len(ITEM_LEVEL)} item names")
    recorder.assert_clean()
