"""Wire types: what the API answers (decoded leniently) and what the PATCH sends (exactly).

Response types ignore fields they do not know and default the ones they miss, so a newer
server, or the real Flxpoint API with its extra fields, decodes without breaking a connector.
The request types keep "omitted" (`UNSET`, not sent) apart from `None` (sent as `null`, which
clears the field), because the PATCH is a JSON merge-patch.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from msgspec import UNSET, UnsetType

# The PATCH body, defined once with the server's limits (the server decodes the same type).
from frsync.contract import AccountingSyncItem, AccountingSyncRequest

__all__ = [
    "UNSET",
    "AccountingSyncItem",
    "AccountingSyncRequest",
    "FulfillmentRequest",
    "FulfillmentRequestStatus",
    "HistoryEntry",
    "Item",
    "UnsetType",
]


class FulfillmentRequestStatus(msgspec.Struct, frozen=True):
    """`{"name": "Processed"}`: Unprocessed, Processing, Processed, Acknowledged, …"""

    name: str


class Item(msgspec.Struct, frozen=True, rename="camel"):
    """One line of a fulfillment request."""

    id: int
    sku: str | None = None
    title: str | None = None
    quantity: int | None = None
    cost: float | None = None
    order_item_id: int | None = None
    external_accounting_item_id: str | None = None


class FulfillmentRequest(msgspec.Struct, frozen=True, rename="camel"):
    """A fulfillment request as `GET /fulfillment-requests/{id}` answers it."""

    id: int
    fulfillment_request_number: str | None = None
    account_id: int | None = None
    source_id: int | None = None
    order_id: int | None = None
    channel_id: int | None = None
    fulfillment_request_status: FulfillmentRequestStatus | None = None
    generated_at: datetime | None = None
    sent_at: datetime | None = None
    acknowledged_at: datetime | None = None
    updated_at: datetime | None = None
    accounting_synced: bool | None = None
    external_accounting_id: str | None = None
    accounting_error: str | None = None
    accounting_synced_at: datetime | None = None
    fulfillment_request_items: list[Item] = msgspec.field(default_factory=list)

    @property
    def status(self) -> str | None:
        """The status name, e.g. "Processed"."""
        status = self.fulfillment_request_status
        return None if status is None else status.name


class HistoryEntry(msgspec.Struct, frozen=True, rename="camel"):
    """One applied accounting-sync request, as the history endpoint lists it (newest first)."""

    at: datetime
    # The entry's id: `before_id` for the next (older) page. None from a server without paging.
    id: int | None = None
    token_id: int | None = None
    token_type: str | None = None  # "account" | "source" | "channel"
    request_id: str | None = None
    # Field name -> its before/after values, in whatever shape the server records them.
    changes: dict[str, Any] = msgspec.field(default_factory=dict)


class Count(msgspec.Struct, frozen=True):
    """`GET /fulfillment-requests/count` answers `{"count": N}`."""

    count: int
