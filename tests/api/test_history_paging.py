"""The history endpoint answers a page at a time (SPEC §6), on every store: `limit` (default
20, max 100) entries older than `beforeId`, newest first, each with its `id`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from frsync.config import Settings
from tests.api.helpers import SYNC, assert_problem
from tests.conftest import client_for
from tests.support import TOKENS, make_settings, running_app

HISTORY = "/fulfillment-requests/{}/accounting-sync/history"
WRITES = 45


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    # Room for WRITES PATCHes and the reads after them in one token's bucket.
    return make_settings(tmp_path, database_url=database_url, burst=1000, rate=1000.0)


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with running_app(settings) as app, client_for(app, TOKENS["account1"]) as client:
        yield client


async def _write_history(api: httpx.AsyncClient, fr_id: int, count: int) -> list[str]:
    """`count` applied PATCHes; their request ids, oldest first."""
    request_ids = []
    for n in range(count):
        answer = await api.patch(SYNC.format(fr_id), json={"externalAccountingId": f"X-{n}"})
        assert answer.status_code == 204, answer.text
        request_ids.append(answer.headers["x-request-id"])
    return request_ids


async def test_history_pages_newest_first_by_before_id(api: httpx.AsyncClient) -> None:
    written = await _write_history(api, 221, WRITES)
    first = (await api.get(HISTORY.format(221))).json()
    assert len(first) == 20  # the default page, not all 45
    pages = [first]
    while len(pages[-1]) == 20:
        answer = await api.get(HISTORY.format(221), params={"beforeId": pages[-1][-1]["id"]})
        assert answer.status_code == 200
        pages.append(answer.json())
    assert [len(page) for page in pages] == [20, 20, 5]
    entries = [entry for page in pages for entry in page]
    ids = [entry["id"] for entry in entries]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == WRITES
    assert [entry["requestId"] for entry in entries] == written[::-1]
    assert entries[0]["changes"]["externalAccountingId"]["after"] == f"X-{WRITES - 1}"
    # Past the oldest entry: an empty page, not an error.
    past = await api.get(HISTORY.format(221), params={"beforeId": ids[-1]})
    assert past.status_code == 200 and past.json() == []


async def test_history_limit_is_honoured_up_to_100(api: httpx.AsyncClient) -> None:
    await _write_history(api, 222, WRITES)
    one = (await api.get(HISTORY.format(222), params={"limit": "1"})).json()
    most = (await api.get(HISTORY.format(222), params={"limit": "100"})).json()
    assert len(one) == 1 and len(most) == WRITES
    assert one[0] == most[0]
    # A page from the middle: exactly the entries below beforeId.
    middle = most[10]["id"]
    page = (await api.get(HISTORY.format(222), params={"limit": "3", "beforeId": middle})).json()
    assert page == most[11:14]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"limit": "1.0"}, "limit"),
        ({"beforeId": "0"}, "beforeId"),
        ({"beforeId": "-5"}, "beforeId"),
        ({"beforeId": "9223372036854775808"}, "beforeId"),
        ({"before_id": "5"}, "before_id"),
        ({"filterPageSize": "5"}, "filterPageSize"),
        ([("limit", "5"), ("limit", "6")], "limit"),
    ],
)
async def test_bad_paging_values_are_400_naming_the_parameter(
    api: httpx.AsyncClient, query: object, field: str
) -> None:
    await _write_history(api, 223, 1)
    answer = await api.get(HISTORY.format(223), params=query)  # type: ignore[arg-type]
    assert_problem(answer, 400, field)


async def test_history_of_an_fr_out_of_scope_is_404_whatever_the_paging(
    settings: Settings,
) -> None:
    async with running_app(settings) as app, client_for(app, TOKENS["account2"]) as other:
        answer = await other.get(HISTORY.format(221), params={"limit": "5", "beforeId": "9"})
    assert_problem(answer, 404)


async def test_empty_history_is_an_empty_page(api: httpx.AsyncClient) -> None:
    answer = await api.get(HISTORY.format(224), params={"beforeId": "1"})
    assert answer.status_code == 200 and answer.json() == []
    assert (await api.get(HISTORY.format(224))).json() == []
