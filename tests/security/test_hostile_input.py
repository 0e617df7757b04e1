"""Family 5 — hostile input (OWASP API8 security misconfiguration / API4 resource use).

A corpus of bodies, ids, query strings and framing that a careless parser chokes on, sent
on both stores. Each case has the answer the contract gives it; none may be a 5xx, and
every answer >= 400 must leave the database as it was. Each size limit is tried at its
maximum (accepted) and one past it (refused), the body limit with and without
Content-Length. tests/api/test_validation.py holds the basic cases; these go further.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette

from frsync.contract import INT64_MAX
from tests.security.asgi import raw_request
from tests.security.conftest import recording_client
from tests.security.dump import Dumper, rows_changed
from tests.security.tally import Recorder
from tests.support import TOKENS, load_fixture

SYNC = "/fulfillment-requests/{}/accounting-sync"
MIB = 1024 * 1024
BIG_FR, BIG_ITEMS = 401, list(range(500_000, 501_000))  # an FR with exactly 1,000 items


@dataclass
class Case:
    name: str
    expect: int | tuple[int, ...]  # a tuple where the stores may differ, each answer clean
    body: bytes = b"{}"
    path: str = SYNC.format(221)
    method: str = "PATCH"
    content_type: str | None = "application/json"
    chunked: bool = False
    raw_headers: list[tuple[bytes, bytes]] | None = None  # sent as-is, bypassing httpx


def _j(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode()


def _padded(size: int) -> bytes:
    """A valid body of exactly `size` bytes: a no-op object padded with spaces."""
    return b"{}" + b" " * (size - 2)


def _items(ids: list[int]) -> bytes:
    return _j({"items": [{"id": i, "externalAccountingItemId": f"X{i}"} for i in ids]})


def _id_cases() -> list[Case]:
    cases = []
    for raw, expect in [("1.0", 400), ('"12312"', 400), ("true", 400), ("0", 400), ("-1", 400),
                        (str(INT64_MAX), 400), (str(2**63), 400), (str(-(2**63) - 1), 400),
                        ("9" * 5000, 400), ("1e2", 400), ("0x10", 400), ("12312.000", 400),
                        ("-0", 400), ("1E400", 400), ("[12312]", 400), ("{}", 400)]:  # fmt: skip
        cases.append(
            Case(f"items[].id = {raw[:20]}", expect, b'{"items": [{"id": ' + raw.encode() + b"}]}")
        )
    for raw, expect in [("0", 400), ("-1", 400), (str(INT64_MAX), 404), (str(2**63), 400),
                        ("9" * 5000, 400), ("%EF%BC%92%EF%BC%92%EF%BC%91", 400),
                        ("%D9%A2%D9%A2%D9%A1", 400), ("221%00", 400), ("221;x=1", 400),
                        ("%20221", 400), ("0221", 400), ("221.0", 400), ("0x DD", 400)]:  # fmt: skip
        cases.append(Case(f"path id = {raw[:20]}", expect, path=SYNC.format(raw)))
        cases.append(
            Case(
                f"GET path id = {raw[:20]}",
                expect,
                method="GET",
                path=f"/fulfillment-requests/{raw}",
                content_type=None,
                body=b"",
            )
        )
    return cases


def _encoding_cases() -> list[Case]:
    return [
        Case("NaN as a string value", 400, b'{"externalAccountingId": NaN}'),
        Case("-Infinity", 400, b'{"accountingSynced": -Infinity}'),
        Case("lone surrogate in a key", 400, b'{"\\ud800": 1}'),
        Case(
            "lone surrogate in an item value",
            400,
            b'{"items": [{"id": 12312, "externalAccountingItemId": "\\udfff"}]}',
        ),
        Case("reversed surrogate pair", 400, b'{"accountingError": "\\udc00\\ud800"}'),
        Case("NUL in a key", 400, b'{"accountingSynced\\u0000": true}'),
        Case("raw NUL byte", 400, b'{"accountingError": "a\x00b"}'),
        Case("NUL in accountingError", 400, b'{"accountingError": "\\u0000"}'),
        Case("overlong UTF-8 slash", 400, b'{"accountingError": "\xc0\xaf"}'),
        Case("UTF-8 of U+FFFF+", 400, b'{"accountingError": "\xf4\x90\x80\x80"}'),
        Case("truncated UTF-8", 400, b'{"accountingError": "\xe2\x82"}'),
        Case("BOM then object", 400, b"\xef\xbb\xbf{}"),
        Case("UTF-16LE body", 400, "{}".encode("utf-16-le")),
        Case("UTF-32 body", 400, "{}".encode("utf-32")),
        Case("random binary", 400, bytes((i * 37 + 11) % 256 for i in range(4096))),
        Case(
            "duplicate key, different case",
            400,
            b'{"accountingSynced": true, "AccountingSynced": true}',
        ),
        Case(
            "duplicate key inside item 2",
            400,
            b'{"items": [{"id": 12312}, {"id": 12313, "externalAccountingItemId": "a", "externalAccountingItemId": "b"}]}',
        ),
        Case("duplicate items key", 400, b'{"items": [], "items": null}'),
        Case("homoglyph key (Cyrillic a)", 400, _j({"аccountingSynced": True})),
        Case("escaped key name", 204, b'{"\\u0061ccountingError": "via escape"}'),
        Case("deep arrays 1,000", 400, b'{"items": ' + b"[" * 1000 + b"]" * 1000 + b"}"),
        Case(
            "deep objects in item 10,000",
            400,
            b'{"items": [' + b'{"id": ' * 10_000 + b"1" + b"}" * 10_000 + b"]}",
        ),
        Case("50,000 keys", 400, b"{" + b",".join(b'"k%d": 1' % i for i in range(50_000)) + b"}"),
        Case("1 MiB key name", 413, b'{"' + b"k" * MIB + b'": 1}'),
        Case("comment in JSON", 400, b'{"accountingSynced": true /* x */}'),
        Case("single quotes", 400, b"{'accountingSynced': true}"),
        Case("trailing comma", 400, b'{"accountingSynced": true,}'),
        Case("unescaped tab in string", 400, b'{"accountingError": "a\tb"}'),
        Case("string 'null'", 400, b'{"accountingSynced": "null"}'),
        Case("items object not array", 400, b'{"items": {"0": {"id": 12312}}}'),
        Case("emoji and RTL text", 204, _j({"accountingError": "\u202egnp.exe 🧾 \u200f"})),
    ]


def _limit_cases() -> list[Case]:
    return [
        Case("externalAccountingId 255", 204, _j({"externalAccountingId": "e" * 255})),
        Case("externalAccountingId 256", 400, _j({"externalAccountingId": "e" * 256})),
        Case("externalAccountingId 255 emoji", 204, _j({"externalAccountingId": "🧾" * 255})),
        Case("externalAccountingId 256 emoji", 400, _j({"externalAccountingId": "🧾" * 256})),
        Case(
            "externalAccountingItemId 255",
            204,
            _j({"items": [{"id": 12312, "externalAccountingItemId": "i" * 255}]}),
        ),
        Case(
            "externalAccountingItemId 256",
            400,
            _j({"items": [{"id": 12312, "externalAccountingItemId": "i" * 256}]}),
        ),
        Case("accountingError 4,000", 204, _j({"accountingError": "é" * 4000})),
        Case("accountingError 4,001", 400, _j({"accountingError": "é" * 4001})),
        Case("items 1,000", 204, _items(BIG_ITEMS), path=SYNC.format(BIG_FR)),
        Case("items 1,001", 400, _items([*BIG_ITEMS, BIG_ITEMS[0]]), path=SYNC.format(BIG_FR)),
        Case("body 1 MiB, Content-Length", 204, _padded(MIB)),
        Case("body 1 MiB + 1, Content-Length", 413, _padded(MIB + 1)),
        Case("body 1 MiB, chunked", 204, _padded(MIB), chunked=True),
        Case("body 1 MiB + 1, chunked", 413, _padded(MIB + 1), chunked=True),
        Case("body 8 MiB, chunked", 413, _padded(8 * MIB), chunked=True),
    ]


def _framing_cases() -> list[Case]:
    token = (b"x-api-token", TOKENS["account1"].encode())
    ctype = (b"content-type", b"application/json")
    return [
        # A Content-Length shorter than the body is the server's (uvicorn's) framing to
        # enforce, not the app's, so it is not tried in-process.
        Case(
            "Content-Length negative",
            204,
            b"{}",
            raw_headers=[token, ctype, (b"content-length", b"-1")],
        ),
        Case(
            "Content-Length not a number",
            204,
            b"{}",
            raw_headers=[token, ctype, (b"content-length", b"abc")],
        ),
        Case(
            "Content-Length 10^20",
            413,
            b"{}",
            raw_headers=[token, ctype, (b"content-length", b"1" + b"0" * 20)],
        ),
        Case(
            "two Content-Types",
            204,
            b"{}",
            raw_headers=[token, ctype, (b"content-type", b"text/plain")],
        ),
        Case(
            "content type with NUL",
            415,
            b"{}",
            raw_headers=[token, (b"content-type", b"application/json\x00")],
        ),
        Case("charset utf-16", 415, b"{}", content_type="application/json; charset=utf-16"),
        Case("charset quoted utf-8", 204, b"{}", content_type='application/json; charset="utf-8"'),
        Case("content type list", 415, b"{}", content_type="application/json, text/plain"),
        Case("application/jsonx", 415, b"{}", content_type="application/jsonx"),
        Case("text/json", 415, b"{}", content_type="text/json"),
    ]


def _query_cases() -> list[Case]:
    cases = []
    # frNumbers with U+0000: SQLite finds nothing (200), PostgreSQL cannot bind NUL in text
    # and the store answers a clean 400. Both are acceptable; a 500 would not be.
    queries: list[tuple[str, int | tuple[int, ...]]] = [("filterPageSize=0", 400), ("filterPageSize=501", 400), ("filterPageSize=500", 200),
                          ("filterPageSize=-1", 400), ("filterPageSize=NaN", 400), ("filterPageSize=1e2", 400),
                          ("filterPageSize=%EF%BC%95", 400), (f"sinceId={2**63}", 400), (f"sinceId={INT64_MAX}", 200),
                          ("filterPageNumber=10000000", 200), ("filterPageNumber=10000001", 400),
                          ("findOrderId=" + "9" * 5000, 400), ("frNumbers=" + ",".join(["FR-1"] * 50), 200),
                          ("frNumbers=" + ",".join(["FR-1"] * 51), 400), ("frNumbers=" + "A" * 60_000, 200),
                          ("frNumbers=%00%0A%1B", (200, 400)), ("frNumbers=%ff%fe", 200), ("filterStatus=processed", 400),
                          ("filterStatus=Processed%00", 400), ("filterAccountingSynced=TRUE", 400),
                          ("filterAccountingSynced=1", 400),
                          ("bogus=1", 400), ("filterpagesize=5", 400), ("%00=1", 400), ("=1", 400),
                          ("filterStatus=Processed'%20OR%201=1--", 400), ("findOrderId=1%20OR%201=1", 400)]  # fmt: skip
    for query, expect in queries:
        for path in ("/fulfillment-requests", "/fulfillment-requests/count"):
            cases.append(
                Case(
                    f"GET {path.rsplit('/', 1)[1]}?{query[:30]}",
                    expect,
                    b"",
                    f"{path}?{query}",
                    "GET",
                    None,
                )
            )
    return cases


CORPUS = [*_id_cases(), *_encoding_cases(), *_limit_cases(), *_framing_cases(), *_query_cases()]


async def test_a_repeated_query_parameter_is_refused(app: Starlette, store_name: str) -> None:
    """Found by this suite: Starlette's QueryParams.keys() lists a repeated name once, so
    `filterSourceId=10&filterSourceId=30` silently used the last value. Fixed in params.py
    (it now reads multi_items()); this keeps it fixed."""
    recorder = Recorder("5 hostile input", store_name)
    async with recording_client(app, recorder, TOKENS["account1"]) as client:
        for path in ("/fulfillment-requests", "/fulfillment-requests/count"):
            recorder.case()
            answer = await client.get(f"{path}?filterSourceId=10&filterSourceId=30")
            assert answer.status_code == 400, answer.text  # params.py: "given more than once."


async def _chunks(body: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(body), 65536):  # no Content-Length: the server must count
        yield body[start : start + 65536]


async def _send(app: Starlette, recorder: Recorder, case: Case) -> tuple[int, bytes]:
    if case.raw_headers is not None:
        status, headers, body = await raw_request(
            app, case.method, case.path, case.raw_headers, case.body
        )
        recorder.check(status, headers, body)
        return status, body
    async with recording_client(app, recorder, TOKENS["account1"]) as client:
        headers = {"Content-Type": case.content_type} if case.content_type else {}
        content: Any = _chunks(case.body) if case.chunked else case.body
        answer = await client.request(case.method, case.path, content=content, headers=headers)
        return answer.status_code, answer.content


async def test_hostile_corpus_gets_the_contract_answer_and_changes_nothing_when_refused(
    app: Starlette, dumper: Dumper, settings: Any, store_name: str
) -> None:
    await load_fixture(settings, {
        "accounts": [], "sources": [], "channels": [], "tokens": [],
        "fulfillmentRequests": [{
            "id": BIG_FR, "accountId": 1, "sourceId": 10, "channelId": 20, "orderId": 9401,
            "fulfillmentRequestNumber": "FR-401", "status": "Processed",
            "generatedAt": "2026-11-20T10:00:00.000Z",
            "items": [{"id": i, "sku": "S", "title": "T", "quantity": 1, "cost": 1.0} for i in BIG_ITEMS],
        }],
    })  # fmt: skip
    recorder = Recorder("5 hostile input", store_name)
    wrong: list[str] = []
    for case in CORPUS:
        recorder.case()
        before = await dumper.dump()
        status, body = await _send(app, recorder, case)
        if status >= 400 and (changed := rows_changed(before, await dumper.dump())):
            recorder.finding("rows_changed", f"{case.name}: {changed} rows")
        if status not in (case.expect if isinstance(case.expect, tuple) else (case.expect,)):
            wrong.append(f"{case.name}: {status} (expected {case.expect}) {body[:150]!r}")
    recorder.counts.notes.append(
        f"corpus of {len(CORPUS)} (ids, encodings, limits, framing, query)"
    )
    assert not wrong, "\n".join(wrong)
    recorder.assert_clean()
