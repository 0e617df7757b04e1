"""Sending a validated push file row by row: outcomes, journal, and when to stop."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from frsync.client import (
    APIConnectionError,
    BadRequestError,
    Client,
    FieldError,
    FrsyncError,
    NotFoundError,
    RateLimitedError,
    ServerError,
    UnauthorizedError,
)
from frsync.push.journal import Journal
from frsync.push.rows import PushRow
from frsync.push.stopper import Interrupted, Stopper

__all__ = ["Outcome", "PushResult", "RowResult", "StopReason", "push_rows"]


class Outcome(StrEnum):
    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"  # done by an earlier push of this file (the journal says so)
    NOT_SENT = "not_sent"  # the run stopped, or --dry-run


class StopReason(StrEnum):
    INTERRUPTED = "interrupted"  # Ctrl-C
    UNAUTHORIZED = "unauthorized"  # a 401: no other row can succeed
    CONNECTION_ERROR = "connection_error"  # the API stayed unreachable through the retries
    DRY_RUN = "dry_run"


_REASONS: tuple[tuple[type[FrsyncError], str], ...] = (
    (BadRequestError, "bad_request"),
    (UnauthorizedError, "unauthorized"),
    (NotFoundError, "not_found"),
    (RateLimitedError, "rate_limited"),
    (ServerError, "server_error"),
    (APIConnectionError, "connection_error"),
)


@dataclass(slots=True)
class RowResult:
    row: PushRow
    outcome: Outcome
    reason: str | None = None  # why it failed: "not_found", "bad_request", …
    status: int | None = None
    message: str | None = None
    request_id: str | None = None
    field_errors: list[FieldError] = field(default_factory=list)

    @classmethod
    def failure(cls, row: PushRow, error: FrsyncError) -> RowResult:
        reason = next((name for kind, name in _REASONS if isinstance(error, kind)), None)
        return cls(
            row,
            Outcome.FAILED,
            reason=reason or f"http_{error.status or 'error'}",  # e.g. http_409, unexpected
            status=error.status,
            message=error.message,
            request_id=error.request_id,
            field_errors=list(error.field_errors) if isinstance(error, BadRequestError) else [],
        )


@dataclass(slots=True)
class PushResult:
    """Every row's result, in file order, and why the run stopped early (if it did)."""

    results: list[RowResult]
    stopped_by: StopReason | None = None

    def count(self, outcome: Outcome) -> int:
        return sum(1 for result in self.results if result.outcome is outcome)

    def failed_by_reason(self) -> Counter[str]:
        return Counter(r.reason or "" for r in self.results if r.outcome is Outcome.FAILED)

    @property
    def all_succeeded(self) -> bool:
        return all(r.outcome in (Outcome.OK, Outcome.SKIPPED) for r in self.results)


def push_rows(
    client: Client,
    rows: list[PushRow],
    journal: Journal,
    *,
    stopper: Stopper,
    on_result: Callable[[RowResult], None] = lambda result: None,
) -> PushResult:
    """Send `rows` in order, journaling each success; stop on Ctrl-C, a 401 or a lost API."""
    result = PushResult([])
    for row in rows:
        if result.stopped_by is None and stopper.stopped:
            result.stopped_by = StopReason.INTERRUPTED
        if result.stopped_by is None:
            row_result = _send(client, row, journal)
            result.stopped_by = _stop_reason(row_result)
        else:
            row_result = RowResult(row, Outcome.NOT_SENT)
        result.results.append(row_result)
        on_result(row_result)
    return result


def _send(client: Client, row: PushRow, journal: Journal) -> RowResult:
    try:
        request_id = client.send_accounting_sync(row.fulfillment_request_id, row.request)
    except Interrupted:  # Ctrl-C while it waited for the bucket or a retry: never sent
        return RowResult(row, Outcome.NOT_SENT)
    except FrsyncError as error:
        return RowResult.failure(row, error)
    journal.record_done(row)
    return RowResult(row, Outcome.OK, status=204, request_id=request_id)


def _stop_reason(result: RowResult) -> StopReason | None:
    if result.outcome is Outcome.NOT_SENT:
        return StopReason.INTERRUPTED
    if result.reason == "unauthorized":  # no other row can succeed with this token
        return StopReason.UNAUTHORIZED
    if result.reason == "connection_error":  # unreachable through every retry: stop, resume later
        return StopReason.CONNECTION_ERROR
    return None
