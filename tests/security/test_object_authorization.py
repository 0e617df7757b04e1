"""Family 1 — object-level authorization (OWASP API1): every token against every FR.

Six tokens (account, source and channel; two accounts) against the ten FRs of the fixture
and one that does not exist, through the path of the PATCH and of every GET, through
`items[].id` in the PATCH body, and through every filter of the list and count endpoints.
In scope: success. Out of scope: a 404 identical, byte for byte apart from the request id,
to the one for a missing FR, and not one row changed.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
from starlette.applications import Starlette

from tests.security.conftest import recording_client
from tests.security.dump import Dumper, rows_changed
from tests.security.tally import Recorder
from tests.support import BASIC_FIXTURE, TOKENS

FRS: dict[int, dict[str, Any]] = {fr["id"]: fr for fr in BASIC_FIXTURE["fulfillmentRequests"]}
ITEM_OWNER = {item["id"]: fr_id for fr_id, fr in FRS.items() for item in fr["items"]}
MISSING = 999_999
OWNER_FIELD = {"account": "accountId", "source": "sourceId", "channel": "channelId"}
# Differ between any two answers for reasons that are not about the FR: the request id, the
# caller's own bucket level, and the date a real server adds.
VOLATILE_HEADERS = {"x-request-id", "x-auth-pool-used", "date"}

FILTER_QUERIES: list[dict[str, str]] = [
    {},
    {"sinceId": "0"},
    {"filterStatus": "Processed,Canceled,Acknowledged"},
]
FILTER_QUERIES += [{"filterSourceId": str(s["id"])} for s in BASIC_FIXTURE["sources"]]
FILTER_QUERIES += [{"findOrderId": str(fr["orderId"])} for fr in FRS.values()]
FILTER_QUERIES += [{"frNumbers": ",".join(fr["fulfillmentRequestNumber"] for fr in FRS.values())}]
FILTER_QUERIES += [{"filterAccountingSynced": v} for v in ("true", "false")]
FILTER_QUERIES += [{"filterHasAccountingError": v} for v in ("true", "false")]


def in_scope(token_name: str, fr_id: int) -> bool:
    kind = token_name.rstrip("0123456789")
    return bool(FRS[fr_id][OWNER_FIELD[kind]] == int(token_name[len(kind) :]))


def fingerprint(answer: httpx.Response) -> tuple[int, bytes, dict[str, str]]:
    """The answer with only the request id masked: status, exact body bytes, headers."""
    request_id = answer.headers["x-request-id"].encode()
    headers = {k: v for k, v in answer.headers.items() if k not in VOLATILE_HEADERS}
    return answer.status_code, answer.content.replace(request_id, b"<rid>"), headers


class Probe:
    """Sends one request per call, dumps the database around it, and records the verdict."""

    def __init__(self, client: httpx.AsyncClient, dumper: Dumper, recorder: Recorder) -> None:
        self.client, self.dumper, self.recorder = client, dumper, recorder

    async def send(self, method: str, url: str, body: Any = None) -> tuple[httpx.Response, int]:
        before = await self.dumper.dump()
        answer = await self.client.request(method, url, json=body)
        return answer, rows_changed(before, await self.dumper.dump())

    async def expect_hidden(
        self, method: str, fr_id: int, suffix: str = "", body: Any = None
    ) -> None:
        """Out of scope: the same answer as for a missing FR, and nothing written."""
        self.recorder.case()
        answer, changed = await self.send(method, f"/fulfillment-requests/{fr_id}{suffix}", body)
        missing, _ = await self.send(method, f"/fulfillment-requests/{MISSING}{suffix}", body)
        what = f"{method} FR {fr_id}{suffix}"
        if answer.status_code < 400:
            self.recorder.finding("cross_tenant", what)
        if changed:
            self.recorder.finding("rows_changed", f"{what}: {changed} rows")
            self.recorder.finding("cross_tenant", f"{what}: wrote")
        assert answer.status_code == 404, what
        assert fingerprint(answer) == fingerprint(missing), what


async def _path_matrix(probe: Probe, token: str) -> None:
    for fr_id in [*FRS, MISSING]:
        if fr_id != MISSING and in_scope(token, fr_id):
            probe.recorder.case(3)
            assert (await probe.client.get(f"/fulfillment-requests/{fr_id}")).json()["id"] == fr_id
            history = await probe.client.get(
                f"/fulfillment-requests/{fr_id}/accounting-sync/history"
            )
            assert history.status_code == 200
            answer, changed = await probe.send(
                "PATCH", f"/fulfillment-requests/{fr_id}/accounting-sync",
                {"externalAccountingId": f"by-{token}"},
            )  # fmt: skip
            # One FR row and one new history row, nothing else.
            assert (answer.status_code, changed) == (204, 3), (token, fr_id, changed)
            continue
        await probe.expect_hidden("GET", fr_id)
        await probe.expect_hidden("GET", fr_id, "/accounting-sync/history")
        await probe.expect_hidden(
            "PATCH",
            fr_id,
            "/accounting-sync",
            {"accountingSynced": True, "externalAccountingId": "x"},
        )


async def _item_matrix(probe: Probe, token: str) -> None:
    own = [fr_id for fr_id in FRS if in_scope(token, fr_id) and FRS[fr_id]["items"]]
    for fr_id in FRS:
        items = [
            {"id": i["id"], "externalAccountingItemId": f"x-{token}"} for i in FRS[fr_id]["items"]
        ]
        if not in_scope(token, fr_id):
            # Its own item ids with a foreign FR id in the path: hidden like a missing FR.
            if items:
                await probe.expect_hidden("PATCH", fr_id, "/accounting-sync", {"items": items})
            # Its item ids smuggled into a request for an FR the token does own.
            for item in items:
                probe.recorder.case()
                url = f"/fulfillment-requests/{own[0]}/accounting-sync"
                answer, changed = await probe.send("PATCH", url, {"items": [item]})
                if answer.status_code < 400 or changed:
                    probe.recorder.finding("cross_tenant", f"item {item['id']} via FR {own[0]}")
                    probe.recorder.finding("rows_changed", f"item {item['id']}: {changed} rows")
                assert answer.status_code == 400
                assert answer.json()["type"].endswith("invalid-items")


async def _filter_matrix(probe: Probe, token: str) -> None:
    """Every filter value that names another scope's data must find nothing of it."""
    allowed = {fr_id for fr_id in FRS if in_scope(token, fr_id)}
    for query in FILTER_QUERIES:
        probe.recorder.case(2)
        listed = await probe.client.get(
            "/fulfillment-requests", params={**query, "filterPageSize": "500"}
        )
        ids = {fr["id"] for fr in listed.json()}
        count = (await probe.client.get("/fulfillment-requests/count", params=query)).json()[
            "count"
        ]
        if not ids <= allowed or count > len(allowed):
            probe.recorder.finding("cross_tenant", f"{token} list {query}: {sorted(ids - allowed)}")
        assert count == len(ids), (token, query)


async def test_every_token_against_every_fr(
    app: Starlette, dumper: Dumper, store_name: str
) -> None:
    recorder = Recorder("1 object-level authorization", store_name)
    for token in TOKENS:
        async with recording_client(app, recorder, TOKENS[token]) as client:
            probe = Probe(client, dumper, recorder)
            await _path_matrix(probe, token)
            await _item_matrix(probe, token)
            await _filter_matrix(probe, token)
    recorder.counts.notes.append(
        f"{len(TOKENS)} tokens x {len(FRS) + 1} FRs x (GET, history, PATCH); items[].id of"
        f" {len(ITEM_OWNER)} items; {len(FILTER_QUERIES)} filter queries x (list, count)"
    )
    recorder.assert_clean()


def test_the_matrix_covers_every_token_type_and_both_accounts() -> None:
    kinds = {re.sub(r"\d+$", "", name) for name in TOKENS}
    accounts = {BASIC_FIXTURE["tokens"][i]["id"] for i in range(2)}
    assert kinds == {"account", "source", "channel"} and accounts == {1, 2}
