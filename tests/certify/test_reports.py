"""The JSON report's shape and the HTML page drawn from it, on a synthetic certification."""

from __future__ import annotations

import json
from pathlib import Path

from frsync.certify.html import COLOURS, write_html
from frsync.certify.process import Finished
from frsync.certify.report import Outcome, build_report, write_report
from frsync.certify.scenarios import SCENARIOS, Limits, Observed, judge
from tests.certify.test_checks import recorded, req


def naive_rate_limit() -> Outcome:
    requests = [req(0, 200, fr=None, method="GET")]
    requests += [req(5 + i * 5, 204 if i < 40 else 429, fr=100 + i) for i in range(60)]
    observed = Observed(
        requests, [recorded(100 + i) for i in range(40)], [100 + i for i in range(60)],
        [0], False, 120, Limits(40, 2.0),
    )  # fmt: skip
    scenario = SCENARIOS["rate-limit"]
    return Outcome(scenario, judge(scenario, observed), requests, [Finished(0, False, "")], 1, 60)


def test_the_json_report_holds_the_verdict_the_evidence_and_every_request(tmp_path: Path) -> None:
    report = build_report([naive_rate_limit()], Limits(40, 2.0), ["naive"], 120, 1.5)
    write_report(report, tmp_path / "r.json")
    loaded = json.loads((tmp_path / "r.json").read_text())
    assert loaded["passed"] is False
    (scenario,) = loaded["scenarios"]
    assert {"name", "passed", "evidence", "requests", "durationS"} <= set(scenario)
    assert scenario["requests"] == 61 == len(scenario["timeline"])
    offender = scenario["evidence"]["firstOffender"]
    # the 429 to request 41 is answered at 215 ms: request 42 arrives then, too soon
    assert offender["status"] == 429 and offender["journalId"] == scenario["timeline"][43]["id"]
    check = scenario["evidence"]["checks"][1]
    assert check["429s"] == 20 and check["beforeRetryAfter"] == 18


def test_the_html_page_is_self_contained_with_a_timeline_per_scenario(tmp_path: Path) -> None:
    report = build_report([naive_rate_limit()], Limits(40, 2.0), ["naive"], 120, 1.5)
    write_html(report, tmp_path / "r.html")
    page = (tmp_path / "r.html").read_text()
    assert page.startswith("<!doctype html>") and "<svg" in page
    assert "<script" not in page and "://" not in page and "<link" not in page
    assert 'id="rate-limit"' in page and "FAIL" in page
    assert page.count(f'fill="{COLOURS["429"]}"') >= 20 and COLOURS["2xx"] in page
    assert 'class="limit"' in page and "first offender #" in page
