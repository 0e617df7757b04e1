"""`frsync push` end to end against a real server over TCP: every exit code, journal, report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from frsync.cli import connector
from frsync.client import Client, RetryPolicy
from frsync.push.journal import Journal
from frsync.push.session import plan_push
from tests.client.helpers import TOKEN, run_cli, write_csv
from tests.support import free_port


def read_report(path: Path) -> dict[str, Any]:
    report: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return report


def history_lengths(api: Client, *fr_ids: int) -> list[int]:
    return [len(api.accounting_history(fr_id)) for fr_id in fr_ids]


def test_all_rows_succeed_exit_0(tmp_path: Path, base_url: str, api: Client) -> None:
    path = write_csv(tmp_path, "221,true,QB-221,null,12312=QB-221-A", "222,false,,No customer,")
    report = tmp_path / "report.json"
    assert run_cli("push", path, "--token", TOKEN, "--base-url", base_url, "--report", report) == 0
    assert api.get_fulfillment_request(221).external_accounting_id == "QB-221"
    assert api.get_fulfillment_request(222).accounting_error == "No customer"
    summary = read_report(report)["summary"]
    assert (summary["sent"], summary["ok"], summary["failed"]) == (2, 2, 0)
    assert [row["outcome"] for row in read_report(report)["rows"]] == ["ok", "ok"]


def test_jsonl_file_is_pushed_as_written(tmp_path: Path, base_url: str, api: Client) -> None:
    path = tmp_path / "results.jsonl"
    path.write_text(
        '{"fulfillmentRequestId": 226, "accountingSynced": true, '
        '"accountingError": null, "items": [{"id": 12360, '
        '"externalAccountingItemId": "QB-A"}]}\n'
    )
    assert run_cli("push", path, "--token", TOKEN, "--base-url", base_url) == 0
    fr = api.get_fulfillment_request(226)
    assert (fr.accounting_synced, fr.accounting_error) == (True, None)


def test_failed_rows_exit_1_with_reasons(tmp_path: Path, base_url: str, capsys: Any) -> None:
    path = write_csv(tmp_path, "221,true,,,", "301,true,,,", "223,true,,,99999=X", "224,true,,,")
    report = tmp_path / "report.json"
    assert run_cli("push", path, "--token", TOKEN, "--base-url", base_url, "--report", report) == 1
    content = read_report(report)
    assert content["summary"]["failedByReason"] == {"bad_request": 1, "not_found": 1}
    rows = content["rows"]
    assert [row["outcome"] for row in rows] == ["ok", "failed", "failed", "ok"]
    assert rows[2]["errors"][0]["field"] == "items[0].id"
    assert rows[1]["requestId"]
    assert "line 3: fulfillment request 301: 404" in capsys.readouterr().err


def test_invalid_file_exit_2_and_nothing_sent(
    tmp_path: Path, base_url: str, api: Client, capsys: Any
) -> None:
    path = write_csv(tmp_path, "221,true,,,", "222,yes,,,")
    report = tmp_path / "report.json"
    assert run_cli("push", path, "--token", TOKEN, "--base-url", base_url, "--report", report) == 2
    assert "line 3: accountingSynced" in capsys.readouterr().err
    assert history_lengths(api, 221) == [0]
    assert read_report(report)["inputErrors"]
    assert not (tmp_path / "results.csv.journal").exists()


def test_dry_run_validates_only_exit_0(tmp_path: Path, base_url: str, api: Client) -> None:
    path = write_csv(tmp_path, "221,true,,,")
    assert run_cli("push", path, "--dry-run") == 0  # needs no token
    assert history_lengths(api, 221) == [0]
    assert not (tmp_path / "results.csv.journal").exists()


def test_refused_token_stops_at_once_exit_2(tmp_path: Path, base_url: str) -> None:
    path = write_csv(tmp_path, "221,true,,,", "222,true,,,", "223,true,,,")
    report = tmp_path / "report.json"
    code = run_cli(
        "push", path, "--token", "revoked-or-wrong-xxxx", "--base-url", base_url, "--report", report
    )
    assert code == 2
    content = read_report(report)
    assert content["stoppedBy"] == "unauthorized"
    assert [row["outcome"] for row in content["rows"]] == ["failed", "not_sent", "not_sent"]


def test_missing_token_is_a_usage_error(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.delenv("FRSYNC_TOKEN", raising=False)
    assert run_cli("push", write_csv(tmp_path, "221,true,,,")) == 2


def test_unknown_option_is_a_usage_error(tmp_path: Path) -> None:
    assert run_cli("push", write_csv(tmp_path, "221,true,,,"), "--bogus") == 2


def test_unreadable_file_is_a_file_error(tmp_path: Path, base_url: str) -> None:
    assert run_cli("push", tmp_path / "absent.csv", "--token", TOKEN, "--base-url", base_url) == 2


def test_damaged_journal_is_a_file_error(tmp_path: Path, base_url: str) -> None:
    path = write_csv(tmp_path, "221,true,,,")
    (tmp_path / "results.csv.journal").write_text("not json\n{}\n")
    assert run_cli("push", path, "--token", TOKEN, "--base-url", base_url) == 2
    assert run_cli("push", path, "--token", TOKEN, "--base-url", base_url, "--force") == 0


def test_environment_supplies_token_and_url_and_flags_win(
    tmp_path: Path, base_url: str, monkeypatch: Any
) -> None:
    monkeypatch.setenv("FRSYNC_TOKEN", TOKEN)
    monkeypatch.setenv("FRSYNC_BASE_URL", base_url)
    assert run_cli("push", write_csv(tmp_path, "221,true,,,", name="a.csv")) == 0
    monkeypatch.setenv("FRSYNC_TOKEN", "wrong-token-xxxxxxxxxx")
    assert run_cli("push", write_csv(tmp_path, "222,true,,,", name="b.csv")) == 2
    assert run_cli("push", write_csv(tmp_path, "223,true,,,", name="c.csv"), "--token", TOKEN) == 0


def test_rerun_after_success_sends_nothing_unless_forced(
    tmp_path: Path, base_url: str, api: Client
) -> None:
    path = write_csv(tmp_path, "221,true,,,", "222,true,,,")
    report = tmp_path / "report.json"
    args = ("--token", TOKEN, "--base-url", base_url, "--report", report)
    assert run_cli("push", path, *args) == 0
    assert run_cli("push", path, *args) == 0
    assert read_report(report)["summary"]["skipped"] == 2
    assert history_lengths(api, 221, 222) == [1, 1]
    forced = tmp_path / "forced.json"
    assert run_cli("push", path, *args[:4], "--report", forced, "--force") == 0
    assert read_report(forced)["summary"]["ok"] == 2  # sent again, and answered 204
    # The same values again: a PATCH that changes nothing appends no history (SPEC §2).
    assert history_lengths(api, 221, 222) == [1, 1]


def test_fixed_rows_are_sent_on_the_rerun_and_nothing_else(
    tmp_path: Path, base_url: str, api: Client
) -> None:
    args = ("--token", TOKEN, "--base-url", base_url)
    assert run_cli("push", write_csv(tmp_path, "221,true,,,", "223,true,,,99999=X"), *args) == 1
    assert run_cli("push", write_csv(tmp_path, "221,true,,,", "223,true,,,12330=X"), *args) == 0
    assert history_lengths(api, 221, 223) == [1, 1]


def test_a_second_concurrent_push_is_refused_before_it_says_resuming(
    tmp_path: Path, base_url: str, capsys: Any
) -> None:
    path = write_csv(tmp_path, "221,true,QB-221,,", "222,true,QB-222,,")
    plan = plan_push(path)
    journal = Journal(plan.journal_path, plan.file.sha256, fresh=False)
    journal.record_done(plan.to_send[0])  # a first push, still running, has done one row
    try:
        assert run_cli("push", path, "--token", TOKEN, "--base-url", base_url) == 2
    finally:
        journal.close()
    err = capsys.readouterr().err
    assert "another frsync push is using" in err
    assert "resuming" not in err
    assert run_cli("push", path, "--token", TOKEN, "--base-url", base_url) == 0  # once it ended
    assert "resuming: 1 of 2 rows" in capsys.readouterr().err


def test_push_to_a_url_that_never_answered_names_it_and_gives_up(
    tmp_path: Path, capsys: Any, monkeypatch: Any
) -> None:
    patience, connect = connector._RETRY.unreached_patience, connector._TIMEOUT.connect
    assert patience is not None and connect is not None
    assert patience + connect < connector.GIVE_UP_WITHIN - 0.5  # the commands' own budget
    # The same rule on a short budget, so the test does not wait 15 s.
    monkeypatch.setattr(connector, "_RETRY", RetryPolicy(backoff_base=0.01, unreached_patience=0.1))
    url = f"http://127.0.0.1:{free_port()}"
    path = write_csv(tmp_path, "221,true,QB-221,,", "222,true,QB-222,,")
    assert run_cli("push", path, "--token", TOKEN, "--base-url", url) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert err.count(f"connection refused at {url}") >= 2  # each retry said, with the URL
    assert "wrong --base-url" in err
