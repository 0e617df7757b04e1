"""Fixture files (`frsync load`, SPEC §8): parsed and checked whole before anything is written.

JSON Lines files (one FR per line) reuse the FR schema here, so both formats accept the
same fields and report errors the same way: which entry, and what is wrong with it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any

import msgspec

from frsync.contract import INT64_MAX
from frsync.domain import ErrorText, ExternalId
from frsync.errors import FixtureError as FixtureError  # its home; importable here too
from frsync.models import OPERATOR, OPERATOR_SCOPE_ID, STATUS_NAMES, TokenType, parse_timestamp
from frsync.store.base import LoadData
from frsync.tokens import MIN_TOKEN_LENGTH, hash_token

Id = Annotated[int, msgspec.Meta(ge=1, le=INT64_MAX)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=255)]


class _Strict(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    pass


class AccountIn(_Strict):
    id: Id
    name: Name


class ScopedIn(_Strict):  # a source or a channel
    id: Id
    account_id: Id
    name: Name


class ItemIn(_Strict):
    id: Id
    sku: Name
    title: Annotated[str, msgspec.Meta(max_length=1000)]
    quantity: Annotated[int, msgspec.Meta(ge=0, le=2**31 - 1)]
    cost: Annotated[float, msgspec.Meta(ge=0)]
    order_item_id: Id | None = None
    external_accounting_item_id: ExternalId | None = None


class FulfillmentRequestIn(_Strict):
    id: Id
    account_id: Id
    source_id: Id
    order_id: Id
    fulfillment_request_number: Name
    status: str
    generated_at: str
    channel_id: Id | None = None
    sent_at: str | None = None
    acknowledged_at: str | None = None
    updated_at: str | None = None
    accounting_synced: bool | None = None
    external_accounting_id: ExternalId | None = None
    accounting_error: ErrorText | None = None
    accounting_synced_at: str | None = None
    items: list[ItemIn] = []


class TokenIn(_Strict):
    token: Annotated[str, msgspec.Meta(min_length=MIN_TOKEN_LENGTH, max_length=512)]
    type: TokenType
    id: Id | None = None  # the account, source or channel; an operator token has none
    label: str | None = None


class Fixture(_Strict):
    accounts: list[AccountIn] = []
    sources: list[ScopedIn] = []
    channels: list[ScopedIn] = []
    fulfillment_requests: list[FulfillmentRequestIn] = []
    tokens: list[TokenIn] = []


def decode_fixture(data: bytes) -> Fixture:
    try:
        return msgspec.json.decode(data, type=Fixture)
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError) as error:
        raise FixtureError(json_error(error)) from None


def json_error(error: Exception) -> str:
    """A decoding error as "where: what", e.g. `fulfillmentRequests[3].sourceId: Expected…`."""
    # msgspec says "Expected `int`, got `str` - at `$.fulfillmentRequests[3].sourceId`".
    text, _, path = str(error).partition(" - at `")
    path = path.rstrip("`").removeprefix("$").removeprefix(".")
    return f"{path}: {text}" if path else text


def _at(where: str, name: str) -> str:
    # "fulfillmentRequests[3].status" in a fixture; "line 7: status" in JSON Lines.
    return f"{where}: {name}" if where.startswith("line ") else f"{where}.{name}"


def _ms(value: str | None, where: str, name: str) -> int | None:
    if value is None:
        return None
    try:
        return parse_timestamp(value)
    except ValueError as error:
        raise FixtureError(f"{_at(where, name)}: {error}") from None


def fr_rows(fr: FulfillmentRequestIn, where: str) -> tuple[tuple[Any, ...], list[tuple[Any, ...]]]:
    """One FR and its items as rows in `store.rows` column order; `where` names the entry in
    messages (`fulfillmentRequests[3]`, `line 7`)."""
    if fr.status not in STATUS_NAMES:
        raise FixtureError(
            f"{_at(where, 'status')}: {fr.status!r} is not one of {', '.join(STATUS_NAMES)}"
        )
    if "\x00" in fr.fulfillment_request_number:  # PostgreSQL's text cannot hold it either
        raise FixtureError(f"{_at(where, 'fulfillmentRequestNumber')}: must not contain U+0000")
    generated = _ms(fr.generated_at, where, "generatedAt")
    assert generated is not None
    updated = _ms(fr.updated_at, where, "updatedAt") or generated
    synced_at = _ms(fr.accounting_synced_at, where, "accountingSyncedAt")
    if fr.accounting_synced is not True:
        synced_at = None
    elif synced_at is None:
        synced_at = updated  # deterministic, so that loading the file again changes nothing
    row = (
        fr.id,
        fr.fulfillment_request_number,
        fr.account_id,
        fr.source_id,
        fr.order_id,
        fr.channel_id,
        fr.status,
        generated,
        _ms(fr.sent_at, where, "sentAt"),
        _ms(fr.acknowledged_at, where, "acknowledgedAt"),
        updated,
        fr.accounting_synced,
        fr.external_accounting_id,
        fr.accounting_error,
        synced_at,
    )
    items = [
        (
            i.id,
            fr.id,
            i.sku,
            i.title,
            i.quantity,
            i.cost,
            i.order_item_id,
            i.external_accounting_item_id,
        )
        for i in fr.items
    ]
    return row, items


def check_unique(ids: Iterable[int], what: str) -> None:
    seen: set[int] = set()
    for index, value in enumerate(ids):
        if value in seen:
            raise FixtureError(f"{what}[{index}]: id {value} appears more than once")
        seen.add(value)


def fixture_to_rows(fixture: Fixture, *, now: int) -> LoadData:
    """Check the fixture's own consistency and turn it into one load batch."""
    for name in ("accounts", "sources", "channels", "fulfillmentRequests"):
        entries = getattr(fixture, "fulfillment_requests" if name[0] == "f" else name)
        check_unique((e.id for e in entries), name)
    check_unique((i.id for fr in fixture.fulfillment_requests for i in fr.items), "items")
    _check_owners(fixture)
    data = LoadData(
        accounts=[(a.id, a.name) for a in fixture.accounts],
        sources=[(s.id, s.account_id, s.name) for s in fixture.sources],
        channels=[(c.id, c.account_id, c.name) for c in fixture.channels],
        tokens=[_token_row(t, index, now) for index, t in enumerate(fixture.tokens)],
    )
    for index, fr in enumerate(fixture.fulfillment_requests):
        row, items = fr_rows(fr, f"fulfillmentRequests[{index}]")
        data.fulfillment_requests.append(row)
        data.items.extend(items)
    return data


def _token_row(token: TokenIn, index: int, now: int) -> tuple[Any, ...]:
    if token.type == OPERATOR:
        if token.id is not None:
            raise FixtureError(
                f"tokens[{index}]: an operator token has no id (it sees every account)"
            )
        scope_id = OPERATOR_SCOPE_ID
    elif token.id is None:
        raise FixtureError(
            f"tokens[{index}]: a {token.type} token needs the id of its {token.type}"
        )
    else:
        scope_id = token.id
    return (hash_token(token.token.strip()), token.type, scope_id, token.label, now)


def _check_owners(fixture: Fixture) -> None:
    """A source or channel named in the file must belong to the FR's account."""
    source_account = {s.id: s.account_id for s in fixture.sources}
    channel_account = {c.id: c.account_id for c in fixture.channels}
    for index, fr in enumerate(fixture.fulfillment_requests):
        where = f"fulfillmentRequests[{index}] (id {fr.id})"
        if source_account.get(fr.source_id, fr.account_id) != fr.account_id:
            raise FixtureError(f"{where}: source {fr.source_id} belongs to another account")
        if (
            fr.channel_id is not None
            and channel_account.get(fr.channel_id, fr.account_id) != fr.account_id
        ):
            raise FixtureError(f"{where}: channel {fr.channel_id} belongs to another account")
