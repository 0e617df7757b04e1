"""schemathesis against the admin operations of the merged /openapi.json, in-process: every
generated body, positive and negative, gets an answer the document allows, and never a 500."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from schemathesis import GenerationMode
from schemathesis.core.parameters import ParameterLocation
from schemathesis.python import asgi as schemathesis_asgi

from frsync.app import create_app
from frsync.config import Settings
from tests.support import BASIC_FIXTURE, OPERATOR_TOKEN, examples, load_fixture

CHECKS = [getattr(schemathesis.checks, name) for name in (
    "not_a_server_error", "status_code_conformance", "content_type_conformance",
    "response_schema_conformance", "negative_data_rejection",
)]  # fmt: skip
AUTH = {"X-API-TOKEN": OPERATOR_TOKEN}


@pytest.fixture
def schema(sandbox_settings: Settings) -> Iterator[Any]:
    asyncio.run(load_fixture(sandbox_settings, BASIC_FIXTURE))
    yield schemathesis.openapi.from_asgi("/openapi.json", create_app(sandbox_settings))
    schemathesis_asgi.shutdown_lifespans()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_generated_admin_requests_get_documented_answers(schema: Any, mode: GenerationMode) -> None:
    operations = [r.ok() for r in schema.get_all_operations()]
    admin = [op for op in operations if op.path.startswith("/__admin")]
    assert len(admin) == 15
    for operation in admin:
        if mode is GenerationMode.NEGATIVE and not (operation.body or operation.path_parameters
                                                    or operation.query):  # fmt: skip
            continue  # nothing to make invalid

        @hypothesis_settings(max_examples=examples(15), deadline=None, database=None,
                             suppress_health_check=list(HealthCheck))  # fmt: skip
        @given(case=operation.as_strategy(generation_mode=mode))
        def run(case: Any) -> None:
            if mode is GenerationMode.POSITIVE and "fulfillmentRequests" in str(case.body):
                case.body["fulfillmentRequests"] = min(case.body["fulfillmentRequests"], 20)
            if mode is GenerationMode.NEGATIVE and [] in (case.query or {}).values():
                return  # an "extra" parameter with no values: nothing invalid goes on the wire
            # A case whose broken part is the X-API-TOKEN header goes out with that header
            # as generated (the answer must then be a refusal), not with the operator token.
            broken = case.meta is not None and case.meta.is_negative_at(ParameterLocation.HEADER)
            headers = {} if mode is GenerationMode.NEGATIVE and broken else AUTH
            response = case.call(headers=headers)
            case.validate_response(response, checks=CHECKS, headers=headers)

        run()
