"""The OpenAPI document says what the server does: its patterns accept exactly what the
parsers accept, its examples are real answers, every operation has response schemas, and
its descriptions are plain text."""

from __future__ import annotations

import dataclasses
import json
import re
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import jsonschema_rs
import pytest
from jsonschema import Draft202012Validator

from frsync.api.params import parse_fr_query, parse_int
from frsync.api.problems import protocol_answer
from frsync.config import Settings
from frsync.contract import INT64_MAX
from frsync.errors import InvalidRequest
from frsync.models import STATUS_NAMES
from tests.openapi_check import DOCUMENT, _resolve
from tests.support import serve_over_tcp

PARAMETERS = DOCUMENT["components"]["parameters"]
SYNC_PATH = "/fulfillment-requests/{fulfillmentRequestId}/accounting-sync"
# Strings around every edge of the integer rule.
INTEGER_CORPUS = [
    "", "0", "1", "01", "00", "+1", "-1", " 1", "1 ", "1.0", "1e3", "0x1", "٣", "9", "10", "99",
    "100", "101", "499", "500", "501", "9999999", "10000000", "10000001", str(INT64_MAX),
    str(INT64_MAX - 1), str(INT64_MAX + 1), "9223372036854775799", "9223372036854775810",
    "8999999999999999999", "9999999999999999999", "1" + "0" * 18, "1" + "0" * 19, "1\n",
]  # fmt: skip


class _Query:
    def __init__(self, **values: str) -> None:
        self.values = values

    def multi_items(self) -> list[tuple[str, str]]:
        return list(self.values.items())


def _accepted_by_server(name: str, raw: str) -> bool:
    try:
        parse_fr_query(_Query(**{name: raw}))
    except InvalidRequest:
        return False
    return True


def _pattern_accepts(schema: dict[str, Any], raw: str) -> bool:
    # jsonschema_rs reads patterns as JSON Schema means them (ECMA-262: `$` is the end of the
    # string); Python's `re`, under the jsonschema package, also lets `$` match before "\n".
    return bool(jsonschema_rs.validator_for(schema).is_valid(raw))


def test_path_id_pattern_accepts_exactly_what_the_server_accepts() -> None:
    schema = PARAMETERS["FulfillmentRequestId"]["schema"]
    for raw in INTEGER_CORPUS:
        try:
            parse_int(raw, "fulfillmentRequestId")
            server = True
        except InvalidRequest:
            server = False
        assert _pattern_accepts(schema, raw) == server, repr(raw)


@pytest.mark.parametrize(
    "name", ["filterPageNumber", "filterPageSize", "sinceId", "findOrderId", "filterSourceId"]
)
def test_integer_filter_pattern_accepts_exactly_what_the_server_accepts(name: str) -> None:
    schema = PARAMETERS[f"Query_{name}"]["schema"]
    for raw in INTEGER_CORPUS:
        assert _pattern_accepts(schema, raw) == _accepted_by_server(name, raw), (name, repr(raw))


def _status_values() -> Iterator[str]:
    yield from ["", ",", "Processed,", ",Processed", "processed", "Processed, Voided", "Done"]
    yield from STATUS_NAMES
    yield ",".join(STATUS_NAMES)
    yield "Processing Error,Processed,Processed"


def test_filter_status_schema_accepts_exactly_what_the_server_accepts() -> None:
    schema = PARAMETERS["Query_filterStatus"]["schema"]
    assert schema["anyOf"][0]["enum"] == ["", *STATUS_NAMES]
    for raw in _status_values():
        assert _pattern_accepts(schema, raw) == _accepted_by_server("filterStatus", raw), raw


def test_fr_numbers_pattern_accepts_exactly_what_the_server_accepts() -> None:
    schema = PARAMETERS["Query_frNumbers"]["schema"]
    for raw in ["", "FR-1", ",".join(["FR-1"] * 50), ",".join(["FR-1"] * 51), "," * 49,
                "," * 50, "a\x00b", " FR-1 , FR-2 ", "A" * 60_000]:  # fmt: skip
        assert _pattern_accepts(schema, raw) == _accepted_by_server("frNumbers", raw), raw[:60]


def _descriptions(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("description", "summary") and isinstance(value, str):
                yield value
            else:
                yield from _descriptions(value)
    elif isinstance(node, list):
        for value in node:
            yield from _descriptions(value)


def test_descriptions_are_plain_text() -> None:
    for text in _descriptions(DOCUMENT):
        assert "`" not in text, text
    for typo in ("identfier", "sytem", "identfies"):
        assert typo not in json.dumps(DOCUMENT)


def test_every_answer_with_a_body_has_a_schema() -> None:
    for path, item in DOCUMENT["paths"].items():
        for method, operation in item.items():
            if method == "parameters":
                continue
            for status, response in operation["responses"].items():
                content = _resolve(response).get("content", {})
                assert status == "204" or content, (method, path, status)
                for media_type, body in content.items():
                    assert "schema" in body, (method, path, status, media_type)


def test_the_patch_accepts_every_json_media_type_the_server_does() -> None:
    content = DOCUMENT["paths"][SYNC_PATH]["patch"]["requestBody"]["content"]
    assert set(content) == {"application/json", "application/merge-patch+json"}
    assert set(content["application/json"]["examples"]) == {"success-1", "error-1"}


async def test_documented_bad_request_examples_are_real_answers(api: httpx.AsyncClient) -> None:
    examples = DOCUMENT["components"]["responses"]["BadRequest"]["content"][
        "application/problem+json"
    ]["examples"]
    bodies = {
        "three-violations": b'{"accountingSynced": "yes", "externalAccountingId": 7,'
        b' "items": [{"externalAccountingItemId": "A"}]}',
        "unknown-field": b'{"accountingEror": "x"}',
    }
    assert set(examples) == set(bodies)
    for name, body in bodies.items():
        answer = await api.patch(
            SYNC_PATH.format(fulfillmentRequestId=221),
            content=body,
            headers={"Content-Type": "application/json"},
        )
        documented = dict(examples[name]["value"])
        real = answer.json()
        assert real.pop("requestId") and documented.pop("requestId")
        assert real == documented, name


def test_the_protocol_layer_408_is_the_one_problem_shape() -> None:
    raw = protocol_answer(408)
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "HTTP/1.1 408 Request Timeout"
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    assert int(headers["content-length"]) == len(body)
    assert headers["content-type"] == "application/problem+json"
    problem = json.loads(body)
    schema = DOCUMENT["components"]["schemas"]["Problem"]
    schema = {**schema, "properties": {**schema["properties"], "errors": {}}}
    Draft202012Validator(schema).validate(problem)
    assert "errors" not in problem
    assert problem["requestId"] == headers["x-request-id"]
    assert problem["type"] == "urn:frsync:problem:request-timeout"
    assert re.fullmatch(r"[0-9a-f]{16}", problem["requestId"])


def _raw_answer(host: str, port: int, request: bytes) -> tuple[str, dict[str, str], bytes]:
    """Send `request` (nothing at all: a silent client) and read until the server closes."""
    with socket.create_connection((host, port), timeout=5) as sock:
        sock.sendall(request)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status, *lines = head.decode().split("\r\n")
    return status, dict(line.lower().split(": ", 1) for line in lines), body


def test_a_protocol_408_and_an_app_404_have_one_shape(settings: Settings) -> None:
    settings = dataclasses.replace(settings, header_timeout=0.5)
    with serve_over_tcp(settings) as base_url:
        host, port = base_url.removeprefix("http://").split(":")
        status, headers, body = _raw_answer(host, int(port), b"")  # silent: the head is late
        app_status, _, app_body = _raw_answer(
            host, int(port), b"GET /nowhere HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
    assert status.startswith("HTTP/1.1 408") and app_status.startswith("HTTP/1.1 404")
    late, missing = json.loads(body), json.loads(app_body)
    assert (
        set(late) == set(missing) == {"type", "title", "status", "detail", "message", "requestId"}
    )
    assert late["requestId"] == headers["x-request-id"]
    assert headers["content-type"] == "application/problem+json"
