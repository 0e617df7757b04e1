"""`Client` against the real server, in-process and over TCP: one test per behaviour."""

from __future__ import annotations

import pytest

from frsync.client import (
    UNSET,
    AccountingSyncItem,
    BadRequestError,
    NotFoundError,
    RateLimitedError,
    RetryPolicy,
    UnauthorizedError,
)
from tests.client.conftest import MakeClient

NO_RETRIES = RetryPolicy(max_retries=0, rate_limit_patience=0.0)


def test_get_fulfillment_request_decodes_typed_fields(make_client: MakeClient) -> None:
    fr = make_client().get_fulfillment_request(221)
    assert (fr.id, fr.fulfillment_request_number, fr.status) == (221, "FR-221", "Processed")
    assert [item.id for item in fr.fulfillment_request_items] == [12312, 12313]
    assert fr.generated_at is not None
    assert fr.generated_at.year == 2026
    assert fr.accounting_synced is None


def test_sync_accounting_applies_the_reference_example(make_client: MakeClient) -> None:
    client = make_client()
    request_id = client.sync_accounting(
        221,
        accounting_synced=True,
        external_accounting_id="TEST-221",
        accounting_error=None,
        items=[AccountingSyncItem(id=12312, external_accounting_item_id="TEST-221-A")],
    )
    fr = client.get_fulfillment_request(221)
    assert (fr.accounting_synced, fr.external_accounting_id) == (True, "TEST-221")
    assert fr.accounting_synced_at is not None
    items = {item.id: item.external_accounting_item_id for item in fr.fulfillment_request_items}
    assert items == {12312: "TEST-221-A", 12313: None}
    assert client.accounting_history(221)[0].request_id == request_id


def test_omitted_fields_stay_and_none_clears(make_client: MakeClient) -> None:
    client = make_client()
    client.sync_accounting(226, external_accounting_id="QB-226", items={12360: "QB-226-A"})
    client.sync_accounting(226, accounting_error=None, items={12360: None})
    fr = client.get_fulfillment_request(226)
    assert fr.accounting_error is None  # cleared by the explicit None
    assert fr.accounting_synced is False  # never sent: unchanged
    assert fr.external_accounting_id == "QB-226"  # omitted the second time: kept
    assert fr.fulfillment_request_items[0].external_accounting_item_id is None


def test_empty_sync_is_a_no_op(make_client: MakeClient) -> None:
    client = make_client()
    before = client.get_fulfillment_request(225)
    client.sync_accounting(225, items=UNSET)
    assert client.get_fulfillment_request(225).external_accounting_id == "PO-225"
    assert client.get_fulfillment_request(225).accounting_synced == before.accounting_synced


def test_history_lists_changes_newest_first(make_client: MakeClient) -> None:
    client = make_client()
    first = client.sync_accounting(222, accounting_synced=False, accounting_error="no vendor")
    second = client.sync_accounting(222, accounting_synced=True, accounting_error=None)
    history = client.accounting_history(222)
    assert [entry.request_id for entry in history] == [second, first]
    assert history[0].token_type == "account"
    assert history[0].at >= history[1].at
    assert "accountingSynced" in history[0].changes


def test_iteration_pages_by_since_id_in_id_order(make_client: MakeClient) -> None:
    client = make_client()
    ids = [fr.id for fr in client.iter_fulfillment_requests(page_size=3)]
    assert ids == [221, 222, 223, 224, 225, 226, 227, 228]  # account 1 only: scope holds
    assert client.stats.requests == 4  # pages of 3, 3 and 2, then an empty one


def test_iteration_skips_nothing_when_synced_along_the_way(make_client: MakeClient) -> None:
    client = make_client()
    seen = []
    for fr in client.iter_fulfillment_requests(page_size=2, accounting_synced=False):
        seen.append(fr.id)
        client.sync_accounting(fr.id, accounting_synced=True)  # it stops matching the filter
    assert seen == [221, 222, 223, 224, 226, 227, 228]
    assert client.count_fulfillment_requests(accounting_synced=False) == 0


def test_filters_and_count_agree(make_client: MakeClient) -> None:
    client = make_client()
    with_error = [fr.id for fr in client.iter_fulfillment_requests(has_accounting_error=True)]
    assert with_error == [226]  # 227's empty error counts as none
    assert client.count_fulfillment_requests(has_accounting_error=True) == 1
    assert client.count_fulfillment_requests(source_id=11, status=["Acknowledged"]) == 1
    assert client.count_fulfillment_requests() == 8


def test_source_token_sees_only_its_source(make_client: MakeClient) -> None:
    client = make_client("source10")
    assert [fr.id for fr in client.iter_fulfillment_requests()] == [221, 223, 225, 226, 228]
    with pytest.raises(NotFoundError):
        client.get_fulfillment_request(222)


def test_not_found_keeps_status_problem_and_request_id(make_client: MakeClient) -> None:
    client = make_client()
    with pytest.raises(NotFoundError) as caught:
        client.sync_accounting(301, accounting_synced=True)  # account 2's: out of scope
    error = caught.value
    assert error.status == 404
    assert error.request_id
    assert error.problem is not None
    assert error.problem.status == 404
    assert client.stats.requests == 1  # never retried


def test_bad_item_id_is_a_bad_request_naming_the_field(make_client: MakeClient) -> None:
    client = make_client()
    with pytest.raises(BadRequestError) as caught:
        client.sync_accounting(221, accounting_synced=True, items={12312: "A", 99999: "B"})
    assert [error.field for error in caught.value.field_errors] == ["items[1].id"]
    assert client.get_fulfillment_request(221).accounting_synced is None  # all or nothing
    assert client.stats.requests == 2


def test_unknown_token_is_unauthorized_and_not_retried(make_client: MakeClient) -> None:
    client = make_client("not-a-token-at-all-xxxxx")
    with pytest.raises(UnauthorizedError) as caught:
        client.get_fulfillment_request(221)
    assert caught.value.status == 401
    assert "X-API-TOKEN" in caught.value.message
    assert client.stats.requests == 1


def test_empty_bucket_is_rate_limited_with_retry_after(make_client: MakeClient) -> None:
    client = make_client(server={"burst": 2, "rate": 0.5}, pace=False, retry=NO_RETRIES)
    client.get_fulfillment_request(221)
    client.get_fulfillment_request(221)
    with pytest.raises(RateLimitedError) as caught:
        client.get_fulfillment_request(221)
    assert caught.value.retry_after == 2.0  # one token at 0.5/s, in whole seconds
    assert client.stats.rate_limited == 1


def test_bucket_takes_its_shape_from_the_pool_headers(make_client: MakeClient) -> None:
    client = make_client(server={"burst": 7, "rate": 3.0})
    client.get_fulfillment_request(221)
    assert client.bucket is not None
    assert (client.bucket.capacity, client.bucket.rate) == (7, 3.0)
    assert 6.0 <= client.bucket.level < 7.0


def test_paced_client_never_meets_a_429(make_client: MakeClient) -> None:
    client = make_client(server={"burst": 3, "rate": 20.0})
    for _ in range(12):  # four times the bucket: the client waits instead
        client.get_fulfillment_request(221)
    assert client.stats.rate_limited == 0
    assert client.stats.seconds_paced > 0


def test_history_pages_and_iterates_every_entry(make_client: MakeClient) -> None:
    client = make_client()
    written = [client.sync_accounting(223, external_accounting_id=f"P-{n}") for n in range(25)]
    page = client.accounting_history(223)
    assert len(page) == 20  # the server's default page
    older = client.accounting_history(223, limit=3, before_id=page[-1].id)
    assert [entry.request_id for entry in older] == written[::-1][20:23]
    every = list(client.iter_accounting_history(223, page_size=7))
    assert [entry.request_id for entry in every] == written[::-1]
