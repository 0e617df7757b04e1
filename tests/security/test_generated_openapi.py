"""Family 6a — schemathesis against frsync's own OpenAPI document, in-process.

Every operation, positive and negative generation, every built-in check, with the account-1
token, each answer also counted for the security tally. (test_schemathesis_run.py runs
schemathesis' own runner with every phase, the stateful one included.) Bounded examples so it fits CI; FRSYNC_SECURITY_EXAMPLES raises the bound for a
deeper run. Schemathesis runs the app (and its lifespan) on its own event-loop thread.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.core.parameters import ParameterLocation
from schemathesis.python import asgi as schemathesis_asgi

from frsync.app import create_app
from frsync.config import Settings
from tests.security.schemathesis_hooks import beyond_schema
from tests.security.tally import Recorder
from tests.support import BASIC_FIXTURE, TOKENS, examples, load_fixture

EXAMPLES = int(os.environ.get("FRSYNC_SECURITY_EXAMPLES", examples(15)))
AUTH = {"X-API-TOKEN": TOKENS["account1"]}
FR_IDS = [fr["id"] for fr in BASIC_FIXTURE["fulfillmentRequests"]]
ALL_CHECKS = [getattr(schemathesis.checks, name) for name in (
    "not_a_server_error", "status_code_conformance", "content_type_conformance",
    "response_headers_conformance", "response_schema_conformance", "positive_data_acceptance",
    "negative_data_rejection", "use_after_free", "ensure_resource_availability",
    "missing_required_header", "ignored_auth", "unsupported_method", "allow_header_conformance",
)]  # fmt: skip


def _outside_the_document(response: Any) -> str | None:
    """Why a positive-mode case was refused for a rule no schema can express, if so (the
    rules are listed in RELIABILITY.md and schemathesis_hooks.py). Only for these is
    `positive_data_acceptance` skipped; every other check still runs."""
    return beyond_schema(response.status_code, response.content)


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
            reason = _outside_the_document(response) if mode is GenerationMode.POSITIVE else None
            unfit = schemathesis.checks.positive_data_acceptance
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
