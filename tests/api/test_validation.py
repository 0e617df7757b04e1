"""Bad requests: every check of SPEC §2 in order, strict types, unknown fields, hostile bodies.
Each is a clean 4xx in the one problem shape, and changes nothing."""

from __future__ import annotations

import httpx
import pytest

from tests.api.helpers import SYNC, assert_problem, state_of

JSON = {"Content-Type": "application/json"}


async def _rejected(api: httpx.AsyncClient, status: int, content: bytes, fr_id: int = 221,
                    headers: dict[str, str] | None = None, field: str | None = None) -> dict:  # fmt: skip
    before = await state_of(api, 221)
    answer = await api.patch(
        SYNC.format(fr_id), content=content, headers=JSON if headers is None else headers
    )
    body = assert_problem(answer, status, field)
    assert await state_of(api, 221) == before, "a rejected request changed something"
    return body


@pytest.mark.parametrize(
    "raw_id", ["0", "-1", "abc", "1.0", "01", "+5", "9223372036854775808", "1e3", "%20221", "221x"]
)
async def test_path_id_must_be_a_positive_int64(api: httpx.AsyncClient, raw_id: str) -> None:
    await _rejected(api, 400, b"{}", fr_id=raw_id, field="fulfillmentRequestId")  # type: ignore[arg-type]


async def test_largest_int64_id_is_valid_and_simply_not_found(api: httpx.AsyncClient) -> None:
    await _rejected(api, 404, b"{}", fr_id=2**63 - 1)


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/x-www-form-urlencoded", "application/xml",
                     "application/json; charset=latin-1", "multipart/form-data"],
)  # fmt: skip
async def test_body_must_be_declared_json(api: httpx.AsyncClient, content_type: str | None) -> None:
    headers = {} if content_type is None else {"Content-Type": content_type}
    await _rejected(api, 415, b"{}", headers=headers)


async def test_json_variants_of_content_type_are_accepted(api: httpx.AsyncClient) -> None:
    for content_type in (
        "application/json; charset=utf-8",
        "APPLICATION/JSON",
        "application/merge-patch+json",
    ):
        answer = await api.patch(
            SYNC.format(221), content=b"{}", headers={"Content-Type": content_type}
        )
        assert answer.status_code == 204, content_type


async def test_body_over_one_mebibyte_is_413_at_limit_it_is_parsed(api: httpx.AsyncClient) -> None:
    limit = 1024 * 1024
    padding = b'{"accountingError": "' + b"x" * (limit - 25) + b'"}'
    assert len(padding) <= limit
    await _rejected(api, 400, padding, field="accountingError")  # parsed: too long a string
    await _rejected(api, 413, b" " * (limit + 1))


async def test_chunked_body_over_limit_is_413(api: httpx.AsyncClient) -> None:
    async def chunks():  # no Content-Length: the server must count as it reads
        for _ in range(17):
            yield b" " * 65536

    before = await state_of(api, 221)
    answer = await api.patch(SYNC.format(221), content=chunks(), headers=JSON)
    assert_problem(answer, 413)
    assert await state_of(api, 221) == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"accountingSynced": "true"}', "accountingSynced"),
        (b'{"accountingSynced": 1}', "accountingSynced"),
        (b'{"externalAccountingId": 7}', "externalAccountingId"),
        (b'{"accountingError": false}', "accountingError"),
        (b'{"items": {"id": 12312}}', "items"),
        (b'{"items": [{"id": "12312"}]}', "items[0].id"),
        (b'{"items": [{"id": 12312.0}]}', "items[0].id"),
        (b'{"items": [{"id": true}]}', "items[0].id"),
        (b'{"items": [{"id": null}]}', "items[0].id"),
        (b'{"items": [{"externalAccountingItemId": "x"}]}', "items[0].id"),
        (
            b'{"items": [{"id": 12312, "externalAccountingItemId": 5}]}',
            "items[0].externalAccountingItemId",
        ),
        (b'{"items": [12312]}', "items[0]"),
    ],
)
async def test_types_are_strict(api: httpx.AsyncClient, body: bytes, field: str) -> None:
    await _rejected(api, 400, body, field=field)


@pytest.mark.parametrize(
    ("body", "field", "hint"),
    [
        (b'{"accountingSyncError": "x"}', "accountingSyncError", "accountingError"),
        (b'{"items": [{"id": 12312, "externalAccountingId": "x"}]}', "items[0].externalAccountingId", "externalAccountingItemId"),
        (b'{"accounting_synced": true}', "accounting_synced", None),
        (b'{"accountId": 2}', "accountId", None),
        (b'{"items": [{"id": 12312, "sku": "x"}]}', "items[0].sku", None),
    ],
)  # fmt: skip
async def test_unknown_fields_are_named_with_sibling_hint(
    api: httpx.AsyncClient, body: bytes, field: str, hint: str | None
) -> None:
    problem = await _rejected(api, 400, body, field=field)
    if hint:
        assert hint in problem["detail"]


HOSTILE = {
    "empty": b"",
    "not json": b"accountingSynced=true",
    "NaN": b'{"accountingError": NaN}',
    "Infinity": b'{"items": [{"id": Infinity}]}',
    "array": b"[]",
    "string": b'"hello"',
    "null": b"null",
    "truncated": b'{"accountingSynced": tru',
    "trailing garbage": b"{} {}",
    "duplicate key": b'{"accountingSynced": true, "accountingSynced": false}',
    "duplicate key in item": b'{"items": [{"id": 12312, "id": 12313}]}',
    "invalid utf-8": b'{"accountingError": "\xff\xfe"}',
    "utf-8 encoded surrogate": b'{"accountingError": "\xed\xa0\x80"}',
    "lone surrogate escape": b'{"accountingError": "\\ud800"}',
    "lone low surrogate": b'{"externalAccountingId": "\\udc00x"}',
    "lone surrogate as a key": b'{"\\ud800": true}',
    "lone surrogate as an item key": b'{"items": [{"id": 12312, "\\udc00x": 1}]}',
    "NUL escape": b'{"externalAccountingId": "a\\u0000b"}',
    "NUL in item": b'{"items": [{"id": 12312, "externalAccountingItemId": "\\u0000"}]}',
    "raw control char": b'{"accountingError": "a\x01b"}',
    "BOM": b'\xef\xbb\xbf{"accountingSynced": true}',
    "utf-16": '{"accountingSynced": true}'.encode("utf-16"),
    "binary": bytes(range(256)) * 4,
    "deep nesting": b'{"items": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    "deep objects": b'{"a": ' * 50_000 + b"1" + b"}" * 50_000,
    "int past 2^63": b'{"items": [{"id": 9223372036854775808}]}',
    "int below -2^63": b'{"items": [{"id": -9223372036854775809}]}',
    "5000-digit number": b'{"items": [{"id": ' + b"9" * 5000 + b"}]}",
    "huge exponent": b'{"items": [{"id": 1e999999}]}',
}


@pytest.mark.parametrize("name", list(HOSTILE))
async def test_hostile_bodies_get_a_clean_400(api: httpx.AsyncClient, name: str) -> None:
    problem = await _rejected(api, 400, HOSTILE[name])
    text = str(problem)
    for leak in ("Traceback", "sqlite", "SELECT", "/work", "site-packages", "tok-"):
        assert leak not in text


async def test_paired_surrogates_are_fine(api: httpx.AsyncClient) -> None:
    answer = await api.patch(
        SYNC.format(221), content=b'{"accountingError": "\\ud83e\\uddfe"}', headers=JSON
    )
    assert answer.status_code == 204
    assert (await api.get("/fulfillment-requests/221")).json()["accountingError"] == "🧾"


async def test_check_order_path_before_content_type_before_body(api: httpx.AsyncClient) -> None:
    # bad path id and bad content type: the path wins
    answer = await api.patch(
        SYNC.format("x"), content=b"\xff", headers={"Content-Type": "text/plain"}
    )
    assert_problem(answer, 400, "fulfillmentRequestId")
    # bad content type and oversized body: 415 first
    answer = await api.patch(
        SYNC.format(221), content=b" " * (2 * 1024 * 1024), headers={"Content-Type": "text/plain"}
    )
    assert_problem(answer, 415)
    # oversized and malformed: 413
    assert_problem(
        await api.patch(SYNC.format(221), content=b"[" * (2 * 1024 * 1024), headers=JSON), 413
    )
    # malformed body on a missing FR: 400 before 404
    assert_problem(await api.patch(SYNC.format(999999), content=b"{", headers=JSON), 400)
    # bad items on a missing FR: 404 before the item check
    assert_problem(await api.patch(SYNC.format(999999), json={"items": [{"id": 1}]}), 404)


async def test_items_of_another_fr_are_rejected_whole(api: httpx.AsyncClient) -> None:
    body = {
        "accountingSynced": True,
        "externalAccountingId": "SHOULD-NOT-LAND",
        "items": [
            {"id": 12312, "externalAccountingItemId": "ok"},
            {"id": 12320, "externalAccountingItemId": "belongs to FR 222"},
            {"id": 424242, "externalAccountingItemId": "exists nowhere"},
        ],
    }
    problem = await _rejected(
        api, 400, __import__("json").dumps(body).encode(), field="items[1].id"
    )
    assert "12320" in problem["detail"] and "424242" in problem["detail"]
    assert [e["field"] for e in problem["errors"]] == ["items[1].id", "items[2].id"]
    fr222 = (await api.get("/fulfillment-requests/222")).json()
    assert fr222["fulfillmentRequestItems"][0]["externalAccountingItemId"] is None


async def test_an_item_listed_twice_is_rejected(api: httpx.AsyncClient) -> None:
    body = b'{"items": [{"id": 12312, "externalAccountingItemId": "a"}, {"id": 12312, "externalAccountingItemId": "b"}]}'
    problem = await _rejected(api, 400, body, field="items[1].id")
    assert "12312" in problem["detail"]


# Errors that teach (SPEC §5): every violation at once, with what to send instead.


async def test_three_violations_of_a_body_are_three_entries(api: httpx.AsyncClient) -> None:
    body = b'{"accountingSynced": "true", "externalAccountingId": 221, "items": [{"externalAccountingItemId": "A"}]}'
    problem = await _rejected(api, 400, body)
    assert [(e["field"], e["message"]) for e in problem["errors"]] == [
        ("accountingSynced", "Must be true, false or null, not a string."),
        ("externalAccountingId", "Must be a string or null, not a number."),
        ("items[0].id", "Is required."),
    ]
    assert problem["detail"].startswith("3 problems: accountingSynced")


async def test_every_kind_of_violation_is_listed_together(api: httpx.AsyncClient) -> None:
    body = (b'{"accountingError": "a\\u0000b", "accountingEror": "x", "accountingSynced": true,'
            b' "accountingSynced": false, "items": [{"id": 12312.0, "sku": 1}, 7]}')  # fmt: skip
    problem = await _rejected(api, 400, body)
    assert [e["field"] for e in problem["errors"]] == [
        "accountingSynced", "accountingEror", "accountingError", "items[0].sku", "items[0].id",
        "items[1]",
    ]  # fmt: skip


async def test_a_body_of_many_bad_keys_lists_one_hundred_and_counts_the_rest(
    api: httpx.AsyncClient,
) -> None:
    body = b"{" + b",".join(b'"k%d": 1' % i for i in range(5000)) + b"}"
    problem = await _rejected(api, 400, body)
    assert len(problem["errors"]) == 100
    assert problem["errors"][-1] == {"field": "", "message": "… and 4,901 more violations."}
    assert problem["detail"].startswith("5,000 problems:")


@pytest.mark.parametrize(
    ("body", "field", "advice"),
    [
        (b'{"accountingEror": "x"}', "accountingEror", "did you mean 'accountingError'?"),
        (b'{"accounting_synced": true}', "accounting_synced", "did you mean 'accountingSynced'?"),
        (b'{"AccountingSynced": true}', "AccountingSynced", "did you mean 'accountingSynced'?"),
        (b'{"accountingSyncError": "x"}', "accountingSyncError", "this endpoint calls it 'accountingError'"),
        (b'{"items": [{"id": 12312, "externalAccountingId": "x"}]}', "items[0].externalAccountingId",
         "this endpoint calls it 'externalAccountingItemId'"),
        (b'{"items": [{"id": 12312, "externalAccountingItemID": "x"}]}', "items[0].externalAccountingItemID",
         "did you mean 'externalAccountingItemId'?"),
    ],
)  # fmt: skip
async def test_an_unknown_field_suggests_the_closest_and_lists_the_allowed(
    api: httpx.AsyncClient, body: bytes, field: str, advice: str
) -> None:
    problem = await _rejected(api, 400, body, field=field)
    message = next(e["message"] for e in problem["errors"] if e["field"] == field)
    assert advice.lower() in message.lower()
    allowed = (
        "id, externalAccountingItemId"
        if field.startswith("items")
        else "accountingSynced, externalAccountingId, accountingError, items"
    )
    assert f"Allowed: {allowed}." in message


async def test_an_unknown_field_far_from_every_name_only_lists_the_allowed(
    api: httpx.AsyncClient,
) -> None:
    problem = await _rejected(api, 400, b'{"zzz": 1}', field="zzz")
    assert problem["errors"][0]["message"] == (
        "Unknown field 'zzz'. Allowed: accountingSynced, externalAccountingId, accountingError, items."
    )


@pytest.mark.parametrize(
    ("query", "field", "advice"),
    [
        ("pageSize=5", "pageSize", "Did you mean 'filterPageSize'?"),
        ("filterpagesize=5", "filterpagesize", "Did you mean 'filterPageSize'?"),
        ("status=Processed", "status", "Did you mean 'filterStatus'?"),
        ("sinceID=3", "sinceID", "Did you mean 'sinceId'?"),
    ],
)
async def test_an_unknown_query_parameter_suggests_the_closest(
    api: httpx.AsyncClient, query: str, field: str, advice: str
) -> None:
    for path in ("/fulfillment-requests", "/fulfillment-requests/count"):
        problem = assert_problem(await api.get(f"{path}?{query}"), 400, field)
        message = problem["errors"][0]["message"]
        assert advice in message and "Allowed: filterPageNumber, filterPageSize," in message


async def test_an_unknown_history_parameter_suggests_the_closest(api: httpx.AsyncClient) -> None:
    answer = await api.get("/fulfillment-requests/221/accounting-sync/history?limt=5")
    problem = assert_problem(answer, 400, "limt")
    assert problem["errors"][0]["message"] == (
        "Unknown query parameter 'limt'. Did you mean 'limit'? Allowed: limit, beforeId."
    )


async def test_every_bad_query_parameter_is_listed(api: httpx.AsyncClient) -> None:
    query = (
        "filterPageSize=0&sinceId=01&pageSize=5&filterStatus=Done&filterSourceId=1&filterSourceId=2"
    )
    problem = assert_problem(await api.get(f"/fulfillment-requests?{query}"), 400)
    assert [e["field"] for e in problem["errors"]] == [
        "filterPageSize", "sinceId", "pageSize", "filterStatus", "filterSourceId",
    ]  # fmt: skip


async def test_push_dry_run_gives_the_same_advice_as_the_server(api: httpx.AsyncClient) -> None:
    from frsync.push.validate import request_from_fields

    problems: list[tuple[str, str]] = []
    assert request_from_fields({"accountingEror": "x"}, problems) is None
    server = await _rejected(api, 400, b'{"accountingEror": "x"}', field="accountingEror")
    advice = server["errors"][0]["message"].removeprefix("Unknown field 'accountingEror'. Did")
    assert problems == [("accountingEror", f"is not a field of this request; did{advice}")]


# One rule for integer-valued numbers (SPEC §2): a JSON integer, never 1.0 or 1e3.


@pytest.mark.parametrize("number", ["12312.0", "1.2312e4", "12312e0", "1e3", "1E3", "1.0"])
async def test_an_id_with_a_fraction_or_exponent_is_refused(
    api: httpx.AsyncClient, number: str
) -> None:
    body = b'{"items": [{"id": %s, "externalAccountingItemId": "x"}]}' % number.encode()
    problem = await _rejected(api, 400, body, field="items[0].id")
    assert "without a fraction or exponent" in problem["errors"][0]["message"]


async def test_the_same_id_written_as_an_integer_is_accepted(api: httpx.AsyncClient) -> None:
    answer = await api.patch(SYNC.format(221), json={"items": [{"id": 12312, "externalAccountingItemId": "x"}]})  # fmt: skip
    assert answer.status_code == 204


# One rule for ids in paths and queries: canonical decimal digits.

NOT_CANONICAL = ["01", "+5", " 5", "5 ", "5.0", "1e3", "0x10", "٥", "-1"]


@pytest.mark.parametrize("raw", NOT_CANONICAL)
async def test_an_id_not_in_plain_digits_is_refused_alike_in_path_and_query(
    api: httpx.AsyncClient, raw: str
) -> None:
    quoted = raw.replace(" ", "%20").replace("+", "%2B")
    for path in (
        f"/fulfillment-requests/{quoted}",
        f"/fulfillment-requests/{quoted}/accounting-sync/history",
    ):
        assert_problem(await api.get(path), 400, "fulfillmentRequestId")
    for name in ("sinceId", "findOrderId", "filterSourceId"):
        assert_problem(await api.get(f"/fulfillment-requests?{name}={quoted}"), 400, name)
    answer = await api.get(f"/fulfillment-requests/221/accounting-sync/history?beforeId={quoted}")
    assert_problem(answer, 400, "beforeId")


async def test_an_id_in_plain_digits_is_accepted_in_path_and_query(api: httpx.AsyncClient) -> None:
    assert (await api.get("/fulfillment-requests/221")).status_code == 200
    assert [
        fr["id"]
        for fr in (await api.get("/fulfillment-requests?sinceId=221&filterPageSize=1")).json()
    ] == [222]
    assert (await api.get("/fulfillment-requests?sinceId=0")).status_code == 200
    assert (
        await api.get("/fulfillment-requests/221/accounting-sync/history?beforeId=5")
    ).status_code == 200


async def test_an_empty_integer_filter_means_no_filter(api: httpx.AsyncClient) -> None:
    everything = (await api.get("/fulfillment-requests")).json()
    blank = "sinceId=&findOrderId=&filterSourceId=&filterPageSize=&filterPageNumber=&frNumbers=&filterStatus="
    assert (await api.get(f"/fulfillment-requests?{blank}")).json() == everything
