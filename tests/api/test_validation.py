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
