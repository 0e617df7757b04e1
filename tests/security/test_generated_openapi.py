"""Family 6a — schemathesis against frsync's own OpenAPI document, in-process.

Every operation, positive and negative generation, every built-in check, with the account-1
token. Bounded examples so it fits CI; FRSYNC_SECURITY_EXAMPLES raises the bound for a
deeper run. Schemathesis runs the app (and its lifespan) on its own event-loop thread.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections import Counter
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.core.parameters import ParameterLocation
from schemathesis.python import asgi as schemathesis_asgi

from frsync.api import create_app
from frsync.config import Settings
from tests.security.tally import Recorder
from tests.support import BASIC_FIXTURE, TOKENS, load_fixture

EXAMPLES = int(os.environ.get("FRSYNC_SECURITY_EXAMPLES", "15"))
AUTH = {"X-API-TOKEN": TOKENS["account1"]}
FR_IDS = [fr["id"] for fr in BASIC_FIXTURE["fulfillmentRequests"]]
ALL_CHECKS = [getattr(schemathesis.checks, name) for name in (
    "not_a_server_error", "status_code_conformance", "content_type_conformance",
    "response_headers_conformance", "response_schema_conformance", "positive_data_acceptance",
    "negative_data_rejection", "use_after_free", "ensure_resource_availability",
    "missing_required_header", "ignored_auth", "unsupported_method", "allow_header_conformance",
)]  # fmt: skip


# Rules of SPEC §2 that JSON Schema cannot say: `774.0` is an "integer" to JSON Schema but
# not a valid id here; strings may not hold U+0000 or lone surrogates; `items[].id` must be
# an item of this FR.
BEYOND_JSON_SCHEMA = {
    "got `float`": "integral float as id",
    "U+0000": "U+0000 in a string",
    "not valid JSON": "lone surrogate",
}
# Gaps of src/frsync/api/openapi.json that schemathesis found (reported, not fixed here):
# sinceId, findOrderId and filterSourceId lack `maximum: 2^63-1`; filterStatus is a bare
# string where a `pattern` of the status names would do.
KNOWN_DOC_GAPS = {
    "must be an integer from": "openapi.json: query id without int64 maximum",
    "unknown status": "openapi.json: filterStatus without pattern",
}


def _outside_the_document(response: Any) -> str | None:
    """Why a positive-mode case was refused for a rule the document does not state, if so.
    Only for these is `positive_data_acceptance` skipped; every other check still runs."""
    if response.status_code != 400:
        return None
    problem = response.json()
    if problem["type"].endswith("invalid-items"):
        return "item not of this FR"
    text = " ".join(e["message"] for e in problem.get("errors", []))
    for needle, reason in {**BEYOND_JSON_SCHEMA, **KNOWN_DOC_GAPS}.items():
        if needle in text:
            return reason
    return None


def _blank_filter(response: Any) -> str | None:
    """SPEC §6: an empty filter value means no filter, so `findOrderId=` is accepted although
    the document types it as an integer (only the boolean filters list "" in their enum; a
    gap reported with the others). Only for such a case is `negative_data_rejection` skipped."""
    # Read the query as sent: a generated `{}` or `[]` goes out as an empty value too.
    sent = parse_qsl(urlsplit(response.request.url).query, keep_blank_values=True)
    blank = any(value.strip() == "" for _, value in sent)
    return "empty filter means no filter" if blank and response.status_code < 300 else None


def _auth_for(case: Any, mode: GenerationMode) -> dict[str, str]:
    """The valid token, unless negative generation broke the headers (X-API-TOKEN is the one
    header the document declares): then the broken header goes out as generated, and the
    answer must be a refusal."""
    broken = case.meta is not None and case.meta.is_negative_at(ParameterLocation.HEADER)
    return {} if mode is GenerationMode.NEGATIVE and broken else AUTH


@pytest.fixture
def schema(settings: Settings) -> Iterator[Any]:
    # `ignored_auth` re-sends cases without a token, all from one client address; the
    # invalid-token limit would answer those 429 (as it should: family 2 tests it), so it
    # is widened for this app alone.
    settings = dataclasses.replace(settings, invalid_token_burst=10**6, invalid_token_rate=1e6)
    asyncio.run(load_fixture(settings, BASIC_FIXTURE))
    loaded = schemathesis.openapi.from_asgi("/openapi.json", create_app(settings))
    yield loaded
    schemathesis_asgi.shutdown_lifespans()  # closes the store this app opened


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_schemathesis_finds_nothing(schema: Any, store_name: str, mode: GenerationMode) -> None:
    recorder = Recorder("6 generated: schemathesis", store_name)
    skipped: Counter[str] = Counter()
    nothing_to_negate: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        strategy = operation.as_strategy(generation_mode=mode)

        @hypothesis_settings(max_examples=EXAMPLES, deadline=None, database=None,
                             suppress_health_check=list(HealthCheck))  # fmt: skip
        @given(case=strategy, known=st.sampled_from([None, *FR_IDS]))
        def run(case: Any, known: int | None) -> None:
            recorder.case()
            headers = _auth_for(case, mode)
            if (
                mode is GenerationMode.POSITIVE
                and known
                and "fulfillmentRequestId" in (case.path_parameters or {})
            ):
                case.path_parameters["fulfillmentRequestId"] = known  # reach real FRs too
            response = case.call(headers=headers)
            headers_seen = {k.lower(): v[0] if isinstance(v, list) else v
                            for k, v in response.headers.items()}  # fmt: skip
            recorder.check(response.status_code, headers_seen, response.content)
            if mode is GenerationMode.POSITIVE:
                reason = _outside_the_document(response)
                unfit = schemathesis.checks.positive_data_acceptance
            else:
                reason = _blank_filter(response)
                unfit = schemathesis.checks.negative_data_rejection
            checks = [c for c in ALL_CHECKS if c is not unfit] if reason else ALL_CHECKS
            if reason:
                skipped[reason] += 1
            case.validate_response(response, checks=checks, headers=headers)

        try:
            run()
        except Unsatisfiable:
            # /healthz, /readyz, /openapi.json…: no parameter or body to make invalid.
            assert mode is GenerationMode.NEGATIVE
            nothing_to_negate.append(operation.label)
    if nothing_to_negate:
        recorder.counts.notes.append(f"negative: {len(nothing_to_negate)} operations take no input")
    if skipped:
        recorder.counts.notes.append(f"{mode.value}: one check skipped for {dict(skipped)}")
    recorder.assert_clean()
