"""`frsync certify` as a user runs it: the example connectors through the real command line,
against a real sandbox (with a fast limit), judged from its journal and state."""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from frsync.certify import SCENARIOS
from tests.certify.conftest import FRSYNC, FastSandbox, examples

pytestmark = pytest.mark.slow
FAILS_NAIVE = {"rate-limit", "transient-errors", "revoked-token"}


def certify(sandbox: FastSandbox, connector: str, out: Path) -> tuple[int, dict[str, Any], str]:
    report, html = out / f"{connector}.json", out / f"{connector}.html"
    command = [
        *FRSYNC, "certify", "--sandbox-url", sandbox.url, "--operator-token",
        sandbox.operator_token, "--timeout", "90", "--report", str(report), "--html", str(html),
        "--", sys.executable, str(examples() / f"{connector}.py"),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=400)
    assert html.exists(), done.stderr
    page = html.read_text(encoding="utf-8")
    assert all(f'id="{name}"' in page for name in SCENARIOS), "a card per scenario"
    assert "<script" not in page and "http://" not in page and "https://" not in page
    return done.returncode, json.loads(report.read_text()), done.stdout


@pytest.fixture(scope="module")
def both(fast_sandbox: FastSandbox, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Both connectors certified at once: each scenario has its own tenant, so they never meet."""
    out = tmp_path_factory.mktemp("reports")
    with ThreadPoolExecutor(2) as pool:
        runs = {name: pool.submit(certify, fast_sandbox, name, out) for name in ("good", "naive")}
        return {name: run.result() for name, run in runs.items()}


def by_name(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {scenario["name"]: scenario for scenario in report["scenarios"]}


def failed_checks(scenario: dict[str, Any]) -> list[str]:
    return [check["name"] for check in scenario["evidence"]["checks"] if not check["passed"]]


def test_the_good_connector_passes_every_scenario(both: dict[str, Any]) -> None:
    code, report, table = both["good"]
    scenarios = by_name(report)
    assert {name: failed_checks(s) for name, s in scenarios.items() if not s["passed"]} == {}
    assert code == 0 and report["passed"] is True
    assert list(scenarios) == list(SCENARIOS)
    assert "PASS" in table and "FAIL" not in table
    assert scenarios["rate-limit"]["requests"] > report["limits"]["burst"]
    transient = scenarios["transient-errors"]["evidence"]["checks"]
    assert next(c for c in transient if c["name"].startswith("retries"))["retries"] >= 6
    assert scenarios["revoked-token"]["exitCodes"] != [0]
    for scenario in scenarios.values():
        assert scenario["durationS"] > 0 and scenario["requests"] == len(scenario["timeline"])


def test_the_naive_connector_fails_exactly_three_with_the_right_evidence(
    both: dict[str, Any],
) -> None:
    code, report, table = both["naive"]
    scenarios = by_name(report)
    assert code == 1 and report["passed"] is False
    assert {name for name, s in scenarios.items() if not s["passed"]} == FAILS_NAIVE
    assert failed_checks(scenarios["rate-limit"]) == ["Retry-After respected"]
    rate = scenarios["rate-limit"]["evidence"]
    # The first request sent too early may itself be a 429 or, if the bucket had refilled
    # meanwhile, an answered one: it is the early arrival that offends, not its answer.
    assert rate["firstOffender"]["journalId"] > 0 and rate["checks"][1]["429s"] > 0
    assert failed_checks(scenarios["transient-errors"]) == ["every FR recorded"]
    assert failed_checks(scenarios["revoked-token"]) == [
        "≤ 5 requests after the first 401",
        "exits non-zero",
    ]
    revoked = scenarios["revoked-token"]["evidence"]
    assert revoked["checks"][1]["afterFirst401"] > 5
    assert revoked["firstOffender"]["journalId"] > revoked["checks"][1]["first401"]
    assert "journal" in table  # the first offender, in the terminal table
