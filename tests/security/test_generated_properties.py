"""Family 6b/6c — Hypothesis: refused requests change nothing; a model equals the database.

6b: requests drawn from every route, token and body shape, valid and not; for each answer
>= 400 the logical dump of the whole database is the same before and after.
6c: a state machine PATCHes FRs with random tokens, fields, nulls and item lists (foreign
and repeated ids included), keeps a model of what the contract says each FR now holds, and
compares it with the database after every step.
FRSYNC_SECURITY_EXAMPLES scales both for a deeper run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from frsync.config import Settings
from tests.security.dump import rows_changed
from tests.security.sync_app import SyncApp
from tests.security.tally import Recorder
from tests.support import BASIC_FIXTURE, TOKENS, examples

SCALE = int(os.environ.get("FRSYNC_SECURITY_EXAMPLES", examples(15)))
FRS = {fr["id"]: fr for fr in BASIC_FIXTURE["fulfillmentRequests"]}
ITEMS = {item["id"]: fr_id for fr_id, fr in FRS.items() for item in fr["items"]}
OWNER_FIELD = {"account": "accountId", "source": "sourceId", "channel": "channelId"}
EXAMPLES: dict[str, Any] = {
    "deadline": None,
    "database": None,
    "suppress_health_check": list(HealthCheck),
}

texts = st.one_of(st.none(), st.text(max_size=8), st.sampled_from(["", "x" * 256, "a\x00b"]))
fr_ids = st.sampled_from([*FRS, 999_999])
item_lists = st.lists(
    st.fixed_dictionaries(
        {"id": st.one_of(st.sampled_from(list(ITEMS)), st.integers(-5, 2**64))},
        optional={"externalAccountingItemId": texts},
    ),
    max_size=4,
)
bodies = st.fixed_dictionaries(
    {},
    optional={
        "accountingSynced": st.one_of(st.none(), st.booleans(), st.just("true"), st.just(1)),
        "externalAccountingId": texts,
        "accountingError": texts,
        "items": st.one_of(st.none(), item_lists),
        "accountId": st.just(2),
    },
)


def in_scope(token_name: str, fr_id: int) -> bool:
    kind = token_name.rstrip("0123456789")
    return fr_id in FRS and FRS[fr_id][OWNER_FIELD[kind]] == int(token_name[len(kind) :])


@pytest.fixture
def sync_app(
    settings: Settings, store_name: str, request: pytest.FixtureRequest
) -> Iterator[SyncApp]:
    family = (
        "6 generated: refusals change nothing"
        if "refused" in request.node.name
        else "6 generated: model = database"
    )
    app = SyncApp(settings, Recorder(family, store_name))
    yield app
    app.close()


def test_any_refused_request_leaves_the_database_unchanged(sync_app: SyncApp) -> None:
    recorder = sync_app.recorder
    tokens = st.sampled_from([*TOKENS.values(), None, "tok-bogus-000000000000"])
    requests = st.one_of(
        st.tuples(
            st.just("PATCH"), fr_ids.map("/fulfillment-requests/{}/accounting-sync".format), bodies
        ),
        st.tuples(
            st.just("PATCH"),
            st.sampled_from(
                [
                    "/fulfillment-requests/0/accounting-sync",
                    "/fulfillment-requests/x/accounting-sync",
                ]
            ),
            bodies,
        ),
        st.tuples(
            st.sampled_from(["GET", "DELETE", "PUT", "POST"]),
            fr_ids.map("/fulfillment-requests/{}".format),
            st.none(),
        ),
        st.tuples(
            st.just("GET"),
            st.sampled_from(["/fulfillment-requests", "/fulfillment-requests/count"]),
            st.none(),
        ),
    )
    content_types = st.sampled_from(
        ["application/json", "application/json", "text/plain", "application/merge-patch+json"]
    )

    @hypothesis_settings(max_examples=5 * SCALE, **EXAMPLES)
    @given(token=tokens, request=requests, content_type=content_types)
    def refused_changes_nothing(
        token: str | None, request: tuple[str, str, Any], content_type: str
    ) -> None:
        method, url, body = request
        recorder.case()
        before = sync_app.dump()
        kwargs: dict[str, Any] = {}
        if body is not None:
            kwargs = {"json": body, "headers": {"Content-Type": content_type}}
        answer = sync_app.request(token, method, url, **kwargs)
        assert answer.status_code < 500
        if answer.status_code >= 400 and (changed := rows_changed(before, sync_app.dump())):
            recorder.finding("rows_changed", f"{method} {url} {body!r}: {changed}")

    refused_changes_nothing()
    recorder.assert_clean()


class FrModel(RuleBasedStateMachine):
    """What the contract says every FR holds; compared with the database after each step."""

    app: SyncApp

    def __init__(self) -> None:
        super().__init__()
        self.frs, self.items, self.history = self.app.view()
        self.recorder = self.app.recorder

    @rule(token=st.sampled_from(list(TOKENS)), fr_id=fr_ids, body=bodies)
    def patch(self, token: str, fr_id: int, body: dict[str, Any]) -> None:
        self.recorder.case()
        answer = self.app.request(
            TOKENS[token], "PATCH", f"/fulfillment-requests/{fr_id}/accounting-sync", json=body
        )
        expected = self._expected_status(token, fr_id, body)
        assert answer.status_code == expected, (token, fr_id, body, answer.text)
        if expected == 204:
            self._apply(fr_id, body)

    def _expected_status(self, token: str, fr_id: int, body: dict[str, Any]) -> int:
        strings = [(body.get("externalAccountingId"), 255), (body.get("accountingError"), 4000)]
        strings += [(i.get("externalAccountingItemId"), 255) for i in body.get("items") or []]
        if (
            "accountId" in body
            or (
                body.get("accountingSynced") in ("true", 1) and body["accountingSynced"] is not True
            )
            or any(isinstance(s, str) and ("\x00" in s or len(s) > most) for s, most in strings)
            or any(not -(2**63) <= i["id"] < 2**63 for i in body.get("items") or [])
        ):
            return 400
        if not in_scope(token, fr_id):
            return 404
        ids = [i["id"] for i in body.get("items") or []]
        if len(set(ids)) != len(ids) or any(ITEMS.get(i) != fr_id for i in ids):
            return 400
        return 204

    def _apply(self, fr_id: int, body: dict[str, Any]) -> None:
        synced, ext, error, synced_at = before = self.frs[fr_id]
        ext = body.get("externalAccountingId", ext)
        error = body.get("accountingError", error)
        if "accountingSynced" in body and body["accountingSynced"] != synced:
            synced = body["accountingSynced"]
            synced_at = "new" if synced is True else None  # the server's clock; checked below
        self.frs[fr_id] = (synced, ext, error, synced_at)
        changed = self.frs[fr_id][:3] != before[:3]
        for item in body.get("items") or []:
            if "externalAccountingItemId" in item:
                changed |= self.items[item["id"]] != item["externalAccountingItemId"]
                self.items[item["id"]] = item["externalAccountingItemId"]
        if changed:  # a PATCH that changes nothing appends no history entry (SPEC §2)
            self.history[fr_id] = self.history.get(fr_id, 0) + 1

    @invariant()
    def model_equals_database(self) -> None:
        frs, items, history = self.app.view()
        for fr_id, (synced, ext, error, synced_at) in self.frs.items():
            if synced_at == "new":  # first time set: take the server's time, keep it from now
                assert isinstance(frs[fr_id][3], int)
                synced_at = frs[fr_id][3]
                self.frs[fr_id] = (synced, ext, error, synced_at)
            assert frs[fr_id] == (synced, ext, error, synced_at), fr_id
        assert items == self.items
        assert history == self.history


def test_the_model_of_the_frs_equals_the_database_after_every_step(sync_app: SyncApp) -> None:
    FrModel.app = sync_app
    run_state_machine_as_test(
        FrModel,
        settings=hypothesis_settings(max_examples=SCALE, stateful_step_count=10, **EXAMPLES),
    )
    sync_app.recorder.assert_clean()
