"""`frsync push --report R.json`: every row's outcome, for the connector that ran the push.

```json
{"file": "results.csv", "fileSha256": "…", "journal": "results.csv.journal",
 "baseUrl": "http://127.0.0.1:8000", "startedAt": "…", "finishedAt": "…", "stoppedBy": null,
 "summary": {"rows": 3, "sent": 2, "ok": 1, "failed": 1, "skipped": 1, "notSent": 0,
             "failedByReason": {"not_found": 1}, "rateLimited": 0, "retries": 0},
 "rows": [{"line": 2, "fulfillmentRequestId": 221, "outcome": "ok", "status": 204,
           "reason": null, "message": null, "requestId": "…", "errors": []}, …]}
```

`outcome` is `ok`, `failed`, `skipped` (done by an earlier push, per the journal) or
`not_sent` (the run stopped first, or `--dry-run`). A file that fails validation gets a report
too, with `inputErrors` and no rows.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from frsync.client import ClientStats
from frsync.push.runner import Outcome, PushResult, RowResult
from frsync.push.session import PushPlan

__all__ = ["input_error_report", "push_report", "write_report"]


def push_report(
    plan: PushPlan,
    result: PushResult,
    *,
    base_url: str,
    started_at: datetime,
    stats: ClientStats | None = None,
) -> dict[str, Any]:
    stats = stats or ClientStats()
    return {
        "file": str(plan.file.path),
        "fileSha256": plan.file.sha256,
        "journal": str(plan.journal_path),
        "baseUrl": base_url,
        "startedAt": _iso(started_at),
        "finishedAt": _iso(datetime.now(UTC)),
        "stoppedBy": None if result.stopped_by is None else result.stopped_by.value,
        "summary": {
            "rows": len(result.results),
            "sent": result.count(Outcome.OK) + result.count(Outcome.FAILED),
            "ok": result.count(Outcome.OK),
            "failed": result.count(Outcome.FAILED),
            "skipped": result.count(Outcome.SKIPPED),
            "notSent": result.count(Outcome.NOT_SENT),
            "failedByReason": dict(sorted(result.failed_by_reason().items())),
            "rateLimited": stats.rate_limited,
            "retries": stats.retries,
        },
        "rows": [_row(row_result) for row_result in result.results],
    }


def input_error_report(path: Path, messages: list[str]) -> dict[str, Any]:
    return {"file": str(path), "stoppedBy": "input_error", "inputErrors": messages, "rows": []}


def write_report(path: Path, report: dict[str, Any]) -> None:
    """Write atomically: a reader never sees half a report, even after Ctrl-C."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(partial, path)


def _row(result: RowResult) -> dict[str, Any]:
    return {
        "line": result.row.line,
        "fulfillmentRequestId": result.row.fulfillment_request_id,
        "outcome": result.outcome.value,
        "status": result.status,
        "reason": result.reason,
        "message": result.message,
        "requestId": result.request_id,
        "errors": [{"field": e.field, "message": e.message} for e in result.field_errors],
    }


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
