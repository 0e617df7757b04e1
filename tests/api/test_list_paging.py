"""`GET /fulfillment-requests` paging edges, bad parameter values and scope (SPEC §6)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette

from frsync.config import Settings
from tests.api.helpers import assert_problem
from tests.api.list_data import COUNT, LIST, app_on_data
from tests.conftest import client_for
from tests.support import TOKENS

INT64_MAX = 2**63 - 1


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Starlette]:
    async with app_on_data(settings) as app:
        yield app


async def ids(api: httpx.AsyncClient, **params: str) -> list[int]:
    answer = await api.get(LIST, params=params)
    assert answer.status_code == 200, answer.text
    return [fr["id"] for fr in answer.json()]


async def test_numbered_pages_add_up_to_the_list_and_end_with_a_short_then_empty_page(
    api: httpx.AsyncClient,
) -> None:
    everything = await ids(api, filterPageSize="500")
    size = 8 if len(everything) % 7 == 0 else 7  # so that the last page is a short one
    last = -(-len(everything) // size)
    pages = [await ids(api, filterPageSize=str(size), filterPageNumber=str(n))
             for n in range(1, last + 2)]  # fmt: skip
    assert [fr_id for page in pages for fr_id in page] == everything
    assert all(len(page) == size for page in pages[: last - 1])
    assert 0 < len(pages[last - 1]) < size
    assert pages[last] == []  # the page after the last one: empty, not an error
    assert await ids(api, filterPageNumber="10000000") == []


async def test_since_id_pages_walk_the_whole_list_and_past_the_end_is_empty(
    api: httpx.AsyncClient,
) -> None:
    everything = await ids(api, filterPageSize="500", filterAccountingSynced="false")
    walked: list[int] = []
    while page := await ids(api, filterPageSize="9", filterAccountingSynced="false",
                            sinceId=str(walked[-1] if walked else 0)):  # fmt: skip
        walked += page
    assert walked == everything and len(everything) > 9
    assert await ids(api, sinceId=str(everything[-1])) == []
    assert await ids(api, sinceId=str(INT64_MAX)) == []


async def test_since_id_and_page_number_combine(api: httpx.AsyncClient) -> None:
    after = await ids(api, filterPageSize="500", sinceId="224")
    assert await ids(api, filterPageSize="3", filterPageNumber="2", sinceId="224") == after[3:6]


async def test_page_size_defaults_to_20_and_goes_up_to_500(api: httpx.AsyncClient) -> None:
    everything = await ids(api, filterPageSize="500")
    assert len(everything) > 20
    assert await ids(api) == everything[:20]
    assert await ids(api, filterPageSize="1") == everything[:1]


async def test_count_ignores_paging_but_checks_it(api: httpx.AsyncClient) -> None:
    whole = (await api.get(COUNT)).json()
    assert whole == {"count": len(await ids(api, filterPageSize="500"))}
    paged = await api.get(COUNT, params={"filterPageSize": "2", "filterPageNumber": "3"})
    assert paged.json() == whole
    assert_problem(await api.get(COUNT, params={"filterPageSize": "501"}), 400, "filterPageSize")


BAD = [
    ("filterPageNumber", "0"), ("filterPageNumber", "-1"), ("filterPageNumber", "two"),
    ("filterPageNumber", "1.5"), ("filterPageSize", "0"), ("filterPageSize", "501"),
    ("filterPageSize", "ten"), ("sinceId", "-1"), ("sinceId", str(INT64_MAX + 1)),
    ("sinceId", "1e3"), ("findOrderId", "0"), ("findOrderId", "abc"),
    ("frNumbers", ",".join(f"FR-{n}" for n in range(51))), ("filterSourceId", "0"),
    ("filterSourceId", "ten"), ("filterStatus", "Shipped"), ("filterStatus", "Processed,Lost"),
    ("filterAccountingSynced", "maybe"), ("filterAccountingSynced", "TRUE"),
    ("filterAccountingSynced", "1"), ("filterHasAccountingError", "yes"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "value"), BAD, ids=lambda v: str(v)[:24])
@pytest.mark.parametrize("path", [LIST, COUNT])
async def test_a_bad_value_is_a_400_naming_the_parameter(
    api: httpx.AsyncClient, path: str, name: str, value: str
) -> None:
    body = assert_problem(await api.get(path, params={name: value}), 400, name)
    assert name in body["detail"]


@pytest.mark.parametrize(
    "query", ["filterAccountSynced=false", "page=2", "sinceId=1&sinceId=2", "sinceid=5"]
)
async def test_unknown_or_repeated_parameters_are_refused(
    api: httpx.AsyncClient, query: str
) -> None:
    name = query.split("=")[0]
    assert_problem(await api.get(f"{LIST}?{query}"), 400, name)


async def test_the_largest_values_allowed_are_accepted(api: httpx.AsyncClient) -> None:
    numbers = ",".join(f"FR-{n}" for n in range(200, 250))  # 50 numbers: FR-221 … among them
    assert 221 in await ids(api, frNumbers=numbers, filterPageSize="500")
    assert await ids(api, findOrderId=str(INT64_MAX), sinceId=str(INT64_MAX)) == []


SCOPE_CASES = [  # (token, filters naming someone else's rows)
    ("source10", {"filterSourceId": "11"}),
    ("source10", {"filterSourceId": "30"}),
    ("account1", {"filterSourceId": "30"}),
    ("account2", {"frNumbers": "FR-221,FR-226"}),
    ("channel20", {"findOrderId": "5224"}),  # FR 224 is channel 21's
    ("channel40", {"filterSourceId": "10"}),
    ("source11", {"frNumbers": "FR-221", "filterAccountingSynced": "false"}),
]


@pytest.mark.parametrize(("token", "params"), SCOPE_CASES)
async def test_filters_never_reach_outside_the_token_scope(
    app: Starlette, token: str, params: dict[str, str]
) -> None:
    async with client_for(app, TOKENS[token]) as client:
        listed = await client.get(LIST, params=params)
        counted = await client.get(COUNT, params=params)
    assert listed.status_code == 200 and listed.json() == []
    assert counted.json() == {"count": 0}


async def test_a_source_token_sees_its_source_through_every_filter(app: Starlette) -> None:
    async with client_for(app, TOKENS["source10"]) as client:
        own = await ids(client, filterSourceId="10", filterPageSize="500")
        everything = await ids(client, filterPageSize="500")
        unsynced = await ids(client, filterAccountingSynced="false", filterPageSize="500")
        (await client.get(f"{LIST}/{own[0]}")).raise_for_status()
    assert own == everything and set(unsynced) < set(own)
