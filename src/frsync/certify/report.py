"""The JSON report (SPEC §11): `{"passed", "scenarios": [{"name", "passed", "evidence",
"requests", "durationS", …}]}` plus every figure the checks measured and each scenario's
timeline, which the terminal table and the HTML page are drawn from."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from frsync.certify.checks import Check
from frsync.certify.journal import Request
from frsync.certify.process import Finished
from frsync.certify.scenarios import RETRY_AFTER_S, Limits, Scenario

TIMELINE_CAP = 5000  # requests drawn per scenario; the counts always cover them all


@dataclass
class Outcome:
    """One scenario's result, as the reports show it."""

    scenario: Scenario
    checks: list[Check]
    requests: list[Request]
    runs: list[Finished]
    duration_s: float
    fr_count: int

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)


def build_report(
    outcomes: list[Outcome], limits: Limits, argv: list[str], timeout: float, duration_s: float
) -> dict[str, Any]:
    scenarios = [_scenario(outcome) for outcome in outcomes]
    return {
        "passed": all(s["passed"] for s in scenarios),
        "command": argv,
        "timeoutS": timeout,
        "durationS": round(duration_s, 3),
        "limits": {"burst": limits.burst, "rate": limits.rate, "retryAfterS": RETRY_AFTER_S},
        "scenarios": scenarios,
    }


def _scenario(outcome: Outcome) -> dict[str, Any]:
    origin = outcome.requests[0].arrival_ms if outcome.requests else 0.0
    return {
        "name": outcome.scenario.name,
        "passed": outcome.passed,
        "evidence": evidence(outcome.checks, origin),
        "requests": len(outcome.requests),
        "durationS": round(outcome.duration_s, 3),
        "sandboxDoes": outcome.scenario.does,
        "passesWhen": outcome.scenario.passes_when,
        "fulfillmentRequests": outcome.fr_count,
        "exitCodes": [run.exit_code for run in outcome.runs],
        "timedOut": any(run.timed_out for run in outcome.runs),
        "output": [run.output for run in outcome.runs],
        "timeline": [_point(r, origin) for r in outcome.requests[:TIMELINE_CAP]],
    }


def evidence(checks: list[Check], origin_ms: float) -> dict[str, Any]:
    failed = [check for check in checks if not check.passed]
    shown = failed[0] if failed else None
    summary = (
        f"{shown.name}: {shown.detail}"
        if shown
        else "; ".join(check.detail for check in checks[1:]) or "all checks passed"
    )
    offender = shown.offender if shown else None
    return {
        "summary": summary,
        "firstOffender": None if offender is None else offender.describe(origin_ms),
        "checks": [
            {
                "name": check.name,
                "passed": check.passed,
                "detail": check.detail,
                "firstOffender": None
                if check.offender is None
                else check.offender.describe(origin_ms),
                **check.figures,
            }
            for check in checks
        ],
    }


def _point(request: Request, origin_ms: float) -> dict[str, Any]:
    return {
        "id": request.id,
        "t": round((request.arrival_ms - origin_ms) / 1000, 3),
        "durationMs": request.duration_ms,
        "method": request.method,
        "path": request.path,
        "status": request.status,
    }


def write_report(report: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
