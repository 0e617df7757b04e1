"""The resources as the API shows them (wire shapes), and the time format they use."""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Final, Literal

import msgspec

# account, source and channel tokens call the API within their scope; an operator token
# belongs to the platform team: it opens the console on every account and the sandbox admin
# API, and is refused on the FR endpoints.
TokenType = Literal["account", "source", "channel", "operator"]
ScopedTokenType = Literal["account", "source", "channel"]
SCOPED_TOKEN_TYPES: tuple[ScopedTokenType, ...] = ("account", "source", "channel")
OPERATOR: Final = "operator"
OPERATOR_SCOPE_ID = 0  # an operator token is scoped to no account: it sees them all

STATUS_NAMES = (
    "Unprocessed",
    "Processing",
    "Processed",
    "Acknowledged",
    "Canceled",
    "Failed",
    "Voided",
    "Processing Error",
)


class Status(msgspec.Struct, frozen=True):
    name: str


class Item(msgspec.Struct, rename="camel"):
    id: int
    sku: str
    title: str
    quantity: int
    cost: float
    order_item_id: int | None
    external_accounting_item_id: str | None


class FulfillmentRequest(msgspec.Struct, rename="camel"):
    id: int
    fulfillment_request_number: str
    account_id: int
    source_id: int
    order_id: int
    channel_id: int | None
    fulfillment_request_status: Status
    generated_at: str
    sent_at: str | None
    acknowledged_at: str | None
    updated_at: str
    accounting_synced: bool | None
    external_accounting_id: str | None
    accounting_error: str | None
    accounting_synced_at: str | None
    fulfillment_request_items: list[Item]


class HistoryEntry(msgspec.Struct, rename="camel"):
    id: int  # the entry's id: `beforeId` for the next (older) page
    at: str
    token_id: int
    token_type: str
    request_id: str
    changes: dict[str, object]


def now_ms() -> int:
    return int(datetime.now(UTC).timestamp() * 1000)


_MS_PER_DAY = 86_400_000


@functools.lru_cache(maxsize=4096)
def _day(days: int) -> str:
    return f"{datetime.fromtimestamp(days * 86_400, UTC):%Y-%m-%d}"


def format_ms(ms: int) -> str:
    """Milliseconds since the epoch → `2026-11-26T16:52:42.123Z`.

    Lists format four times per FR; integer arithmetic with the date cached per day is
    several times cheaper than building a datetime each time."""
    days, rest = divmod(ms, _MS_PER_DAY)
    seconds, millis = divmod(rest, 1000)
    minutes, second = divmod(seconds, 60)
    hour, minute = divmod(minutes, 60)
    return f"{_day(days)}T{hour:02d}:{minute:02d}:{second:02d}.{millis:03d}Z"


def format_ms_or_none(ms: int | None) -> str | None:
    return None if ms is None else format_ms(ms)


def parse_timestamp(text: str) -> int:
    """ISO-8601 with an offset or `Z` → milliseconds since the epoch; ValueError otherwise."""
    stamp = datetime.fromisoformat(text)
    if stamp.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone; add 'Z' for UTC")
    return int(stamp.timestamp() * 1000)
