"""Store behaviour both backends must share where the SQL engines differ: foreign keys on
load, and tokens for a scope that does not exist."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from frsync.backends import open_store
from frsync.config import Settings
from frsync.errors import InvalidRequest, NotFound
from frsync.store import LoadData, Store

MISSING_PARENT = (
    "A row refers to an account, source or channel that does not exist; nothing was loaded."
)


@pytest.fixture
async def store(settings: Settings) -> AsyncIterator[Store]:
    opened = await open_store(settings)
    try:
        yield opened
    finally:
        await opened.close()


async def test_a_row_naming_a_missing_account_loads_nothing_with_one_message(
    store: Store,
) -> None:
    batch = LoadData(accounts=[(5, "Kept?")], sources=[(50, 404, "Orphan")])
    with pytest.raises(InvalidRequest) as raised:
        await store.load([batch])
    assert raised.value.detail == MISSING_PARENT
    with pytest.raises(NotFound):  # account 5 was rolled back with the rest
        await store.create_token(b"\x01" * 32, "account", 5, None)


async def test_a_later_batch_failing_rolls_back_the_earlier_ones(store: Store) -> None:
    good = LoadData(accounts=[(6, "First batch")])
    bad = LoadData(channels=[(60, 404, "Orphan")])
    with pytest.raises(InvalidRequest):
        await store.load([good, bad])
    assert await store.list_tokens() == []
    with pytest.raises(NotFound):
        await store.create_token(b"\x02" * 32, "account", 6, None)


@pytest.mark.parametrize("token_type", ["account", "source", "channel"])
async def test_a_token_for_a_missing_scope_is_not_created(store: Store, token_type: str) -> None:
    with pytest.raises(NotFound, match=f"no {token_type} with id 404"):
        await store.create_token(b"\x03" * 32, token_type, 404, None)  # type: ignore[arg-type]
    assert await store.list_tokens() == []


async def test_tokens_are_created_listed_and_revoked_once(store: Store) -> None:
    await store.load([LoadData(accounts=[(7, "Acme")])])
    token_id = await store.create_token(b"\x04" * 32, "account", 7, "ci")
    (info,) = await store.list_tokens()
    assert (info.id, info.token_type, info.scope_id, info.label) == (token_id, "account", 7, "ci")
    assert info.revoked_at is None
    principal = await store.find_token(b"\x04" * 32)
    assert principal is not None and principal.scope_id == 7
    assert await store.revoke_token(token_id) is True
    assert await store.revoke_token(token_id) is False
    assert await store.find_token(b"\x04" * 32) is None
