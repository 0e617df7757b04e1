"""`frsync pending`: what is left to sync, in a shape `frsync push` reads back."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from frsync.cli import connector
from frsync.client import Client, RetryPolicy
from tests.client.helpers import TOKEN, run_cli
from tests.support import free_port

NOT_SYNCED = [221, 222, 223, 224, 226, 227, 228]  # account 1; 225 is synced


def pending(base_url: str, capsys: Any, *options: str) -> str:
    assert run_cli("pending", "--token", TOKEN, "--base-url", base_url, *options) == 0
    output: str = capsys.readouterr().out
    return output


def test_table_lists_what_is_not_yet_synced(base_url: str, capsys: Any) -> None:
    output = pending(base_url, capsys)
    listed = [int(line.split()[0]) for line in output.splitlines()[1:] if line.strip()]
    assert listed == NOT_SYNCED


def test_errors_lists_only_requests_with_an_accounting_error(base_url: str, capsys: Any) -> None:
    lines = pending(base_url, capsys, "--errors", "--format", "jsonl").splitlines()
    assert [json.loads(line) for line in lines] == [
        {
            "fulfillmentRequestId": 226,
            "accountingSynced": False,
            "accountingError": "Vendor not mapped",
            "items": [{"id": 12360}],
        }
    ]


def test_csv_pushed_back_untouched_changes_nothing(
    base_url: str, api: Client, capsys: Any, tmp_path: Path
) -> None:
    before = [api.get_fulfillment_request(fr_id) for fr_id in NOT_SYNCED]
    path = tmp_path / "pending.csv"
    path.write_text(pending(base_url, capsys, "--format", "csv"))
    assert run_cli("push", path, "--token", TOKEN, "--base-url", base_url) == 0
    after = [api.get_fulfillment_request(fr_id) for fr_id in NOT_SYNCED]
    assert [fr.accounting_synced for fr in after] == [fr.accounting_synced for fr in before]
    assert [fr.accounting_error for fr in after] == [fr.accounting_error for fr in before]


def test_csv_filled_in_by_a_connector_empties_the_list(
    base_url: str, capsys: Any, tmp_path: Path
) -> None:
    rows = list(csv.DictReader(io.StringIO(pending(base_url, capsys, "--format", "csv"))))
    for row in rows:  # what a connector does once the bills are in the ledger
        row.update(
            accountingSynced="true",
            accountingError="null",
            externalAccountingId=f"BILL-{row['fulfillmentRequestId']}",
        )
        row["items"] = row["items"].replace("=", "=LINE-")  # "12312=" -> "12312=LINE-"
    path = tmp_path / "filled.csv"
    with path.open("w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    assert run_cli("push", path, "--token", TOKEN, "--base-url", base_url) == 0
    capsys.readouterr()  # the push's summary
    assert pending(base_url, capsys, "--format", "csv").splitlines()[1:] == []


def test_jsonl_round_trip_is_accepted_by_push(base_url: str, capsys: Any, tmp_path: Path) -> None:
    path = tmp_path / "pending.jsonl"
    path.write_text(pending(base_url, capsys, "--format", "jsonl"))
    assert run_cli("push", path, "--dry-run") == 0


def test_refused_token_exit_2(base_url: str) -> None:
    assert run_cli("pending", "--token", "wrong-token-xxxxxxxxxxxx", "--base-url", base_url) == 2


def test_missing_token_exit_2(monkeypatch: Any) -> None:
    monkeypatch.delenv("FRSYNC_TOKEN", raising=False)
    assert run_cli("pending") == 2


def test_unknown_format_exit_2(base_url: str) -> None:
    assert run_cli("pending", "--token", TOKEN, "--format", "xml") == 2


def test_errors_table_wraps_the_error_on_an_80_column_terminal(
    base_url: str, api: Client, capsys: Any, monkeypatch: Any
) -> None:
    error = "Vendor 'ACME Industrial Supply' is not mapped to a QuickBooks vendor; map it first"
    api.sync_accounting(226, accounting_error=error)
    monkeypatch.setenv("COLUMNS", "80")
    output = pending(base_url, capsys, "--errors")
    assert max(len(line) for line in output.splitlines()) <= 80
    assert "…" not in output
    assert all(word in output.split() for word in error.split())  # wrapped between words


def test_pending_at_a_closed_port_names_the_url_says_each_retry_and_gives_up(
    capsys: Any, monkeypatch: Any
) -> None:
    patience, connect = connector._RETRY.unreached_patience, connector._TIMEOUT.connect
    assert patience is not None and connect is not None
    assert patience + connect < connector.GIVE_UP_WITHIN - 0.5  # the commands' own budget
    # The same rule with tiny waits, so the test does not wait 15 s; the retries end by count
    # (two), not by the patience, so a slow machine still sees both of them said.
    monkeypatch.setattr(
        connector,
        "_RETRY",
        RetryPolicy(max_retries=2, backoff_base=0.01, unreached_patience=60.0),
    )
    url = f"http://127.0.0.1:{free_port()}"
    assert run_cli("pending", "--token", TOKEN, "--base-url", url) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert err.count("retrying in") == 2
    assert f"connection refused at {url}" in err
    assert f"error: cannot reach {url}" in err
    assert "wrong --base-url" in err
