"""`GET /fulfillment-requests` and `/count` (SPEC §6): every filter alone and combined, paging
edges, bad values, and scope for each token type. Answers are compared with a plain-Python
model of the filters over the loaded data; a count always equals its unpaged list's length."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from frsync.config import Settings
from tests.api.list_data import COUNT, DATA, LIST, app_on_data
from tests.conftest import client_for
from tests.support import TOKENS

FRS = DATA["fulfillmentRequests"]
OWNER = {"account": "accountId", "source": "sourceId", "channel": "channelId"}


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Starlette]:
    async with app_on_data(settings) as app:
        yield app


def _keep(fr: dict[str, Any], name: str, value: str) -> bool:
    """The model of one filter, written from SPEC §6 independently of the SQL."""
    synced, error = fr.get("accountingSynced"), fr.get("accountingError")
    tests = {
        "sinceId": lambda: fr["id"] > int(value),
        "findOrderId": lambda: fr["orderId"] == int(value),
        "frNumbers": lambda: fr["fulfillmentRequestNumber"] in value.split(","),
        "filterSourceId": lambda: fr["sourceId"] == int(value),
        "filterStatus": lambda: fr["status"] in value.split(","),
        "filterAccountingSynced": lambda: (synced is True) == (value == "true"),
        "filterHasAccountingError": lambda: bool(error) == (value == "true"),
    }
    return tests[name]()


def expected(token: str, params: dict[str, str]) -> list[int]:
    kind = token.rstrip("0123456789")
    scope_id = int(token[len(kind) :])
    return sorted(
        fr["id"]
        for fr in FRS
        if fr.get(OWNER[kind]) == scope_id
        and all(_keep(fr, name, value) for name, value in params.items() if value)
    )


async def listed_and_counted(
    client: httpx.AsyncClient, params: dict[str, str]
) -> tuple[list[int], int]:
    answer = await client.get(LIST, params={**params, "filterPageSize": "500"})
    count = await client.get(COUNT, params=params)
    assert answer.status_code == 200 and count.status_code == 200, (answer.text, count.text)
    return [fr["id"] for fr in answer.json()], count.json()["count"]


def _numbers(*ids: int) -> str:
    return ",".join(f"FR-{i}" for i in ids)


SINGLE = {
    "sinceId": ["0", "224", "1000100", "1000240"],
    "findOrderId": ["5222", "3000007", "1"],
    "frNumbers": [_numbers(221), _numbers(221, 226, 301, 1000003), "FR-nope"],
    "filterSourceId": ["10", "11", "30", "101"],
    "filterStatus": ["Processed", "Acknowledged,Canceled", "Processing Error", "Voided"],
    "filterAccountingSynced": ["true", "false"],
    "filterHasAccountingError": ["true", "false"],
}
ALONE = [{name: value} for name, values in SINGLE.items() for value in values]
# Every pair of filters, with a value each that leaves something to find.
TYPICAL = {"sinceId": "1000050", "findOrderId": "3000007", "frNumbers": _numbers(221, 225, 226, 1000010),
           "filterSourceId": "10", "filterStatus": "Processed,Acknowledged",
           "filterAccountingSynced": "false", "filterHasAccountingError": "true"}  # fmt: skip
PAIRS = [{a: TYPICAL[a], b: TYPICAL[b]} for a, b in itertools.combinations(TYPICAL, 2)]
ACCOUNTING = [
    {"filterAccountingSynced": s, "filterHasAccountingError": e, **more}
    for s, e in itertools.product(["true", "false"], repeat=2)
    for more in ({}, {"filterStatus": "Processed"}, {"filterSourceId": "11"}, {"sinceId": "1000120"})
]  # fmt: skip


def _name(params: dict[str, str]) -> str:
    return "&".join(f"{k}={v}" for k, v in params.items())[:80]


@pytest.mark.parametrize("params", [{}, *ALONE, *PAIRS, *ACCOUNTING, TYPICAL], ids=_name)
async def test_filters_alone_and_combined_match_the_model_for_every_token(
    app: Starlette, params: dict[str, str]
) -> None:
    for token in TOKENS:
        async with client_for(app, TOKENS[token]) as client:
            ids, count = await listed_and_counted(client, params)
        assert ids == expected(token, params), token
        assert count == len(ids), token


def test_the_model_is_not_vacuous() -> None:
    """The data leaves each accounting filter something to find, in both directions."""
    for params in ({"filterAccountingSynced": "true"}, {"filterAccountingSynced": "false"},
                   {"filterHasAccountingError": "true"}, {"filterHasAccountingError": "false"},
                   {"filterAccountingSynced": "true", "filterHasAccountingError": "false"},
                   {"filterAccountingSynced": "false", "filterHasAccountingError": "true"}):  # fmt: skip
        assert len(expected("account1", params)) >= 5, params
    assert len(expected("account1", {})) > 80


async def test_not_synced_matches_false_and_null_and_an_empty_error_is_no_error(
    api: httpx.AsyncClient,
) -> None:
    ids, _ = await listed_and_counted(api, {"filterAccountingSynced": "false", "sinceId": "0"})
    assert {221, 226, 227} <= set(ids) and 225 not in ids  # null, false, false; 225 is true
    ids, _ = await listed_and_counted(api, {"filterHasAccountingError": "true"})
    assert 226 in ids and 227 not in ids  # 227's error is ""
    ids, _ = await listed_and_counted(api, {"filterHasAccountingError": "false"})
    assert 227 in ids and 221 in ids and 226 not in ids


async def test_empty_values_mean_no_filter(api: httpx.AsyncClient) -> None:
    everything = await listed_and_counted(api, {})
    blank = {name: "" for name in SINGLE}
    assert await listed_and_counted(api, blank) == everything
    default = await api.get(LIST, params={"filterPageNumber": "", "filterPageSize": ""})
    assert [fr["id"] for fr in default.json()] == everything[0][:20]


async def test_list_is_ordered_by_id_and_items_come_with_their_fr(api: httpx.AsyncClient) -> None:
    page = (await api.get(LIST, params={"filterPageSize": "30"})).json()
    assert [fr["id"] for fr in page] == sorted(fr["id"] for fr in page)
    for fr in page[:12]:
        alone = (await api.get(f"{LIST}/{fr['id']}")).json()
        assert fr == alone
