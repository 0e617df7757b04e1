"""Hooks for the full schemathesis run (test_schemathesis_run.py), loaded by schemathesis
through SCHEMATHESIS_HOOKS.

One check is replaced by a stricter-explained twin: `positive_data_acceptance` fails when a
request that fits the document is refused. A few rules of SPEC §2 cannot be written in JSON
Schema; a request refused for one of those, and only those, is excused here. Each is listed
and explained in RELIABILITY.md ("What the OpenAPI document cannot say").
"""

from __future__ import annotations

import json
import os
from typing import Any

import schemathesis
from schemathesis.specs.openapi.checks import positive_data_acceptance

# Rule (as the 400 names it) -> why no schema can say it.
BEYOND_SCHEMA = {
    "invalid-items": "items[].id must be an item of this FR, listed once",
    "without a fraction or exponent": "an id is written as a JSON integer (1.0 is a JSON Schema integer)",
    "lone surrogate": "strings may not hold a lone surrogate",
}


def beyond_schema(status: int, body: bytes) -> str | None:
    """The rule a 400 was given for, when it is one the document cannot express."""
    if status != 400:
        return None
    try:
        problem: dict[str, Any] = json.loads(body)
    except ValueError:
        return None
    text = " ".join([problem.get("type", "")] + [e["message"] for e in problem.get("errors", [])])
    return next((why for needle, why in BEYOND_SCHEMA.items() if needle in text), None)


@schemathesis.check
def positive_data_acceptance_but_beyond_schema(ctx: Any, response: Any, case: Any) -> bool | None:
    """`positive_data_acceptance`, except for a refusal by a rule no schema can express."""
    reason = beyond_schema(response.status_code, response.content)
    if reason is not None:
        excused_log = os.environ.get("FRSYNC_SCHEMATHESIS_EXCUSED")
        if excused_log:  # one line per excused case, for the test to report
            with open(excused_log, "a", encoding="utf-8") as log:
                log.write(reason + "\n")
        return None
    return positive_data_acceptance(ctx, response, case)  # type: ignore[no-any-return]
