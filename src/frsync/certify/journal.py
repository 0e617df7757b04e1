"""The connector's requests as the sandbox journal recorded them, in the shape the judge reads.

The journal stamps `at` when the answer starts (or when a dropped connection is closed) and
`durationMs` from the request's arrival, so a request occupied the server from
`at - durationMs` (its arrival) to `at` (its answer). Times are milliseconds since the epoch.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

_SYNC_PATH = re.compile(r"^/fulfillment-requests/(\d+)/accounting-sync$")


@dataclass(frozen=True)
class Request:
    """One journal entry: when it arrived and was answered, what it was, what it got."""

    id: int
    at_ms: float  # when the answer started (a drop: when the connection was closed)
    duration_ms: float
    method: str
    path: str
    status: int | None  # None: the connection was dropped without an answer
    body: str | None  # canonical JSON text of the body, or None

    @property
    def arrival_ms(self) -> float:
        return self.at_ms - self.duration_ms

    @property
    def fr_id(self) -> int | None:
        """The FR a PATCH …/accounting-sync addressed (None for any other request)."""
        found = _SYNC_PATH.match(self.path)
        return int(found.group(1)) if found and self.method == "PATCH" else None

    @property
    def failed(self) -> bool:
        """A server-side failure a connector should retry: a 5xx or a dropped connection."""
        return self.status is None or self.status >= 500

    def describe(self, origin_ms: float) -> dict[str, Any]:
        """The offending request as the evidence shows it."""
        return {
            "journalId": self.id,
            "at": iso(self.arrival_ms),
            "t": round((self.arrival_ms - origin_ms) / 1000, 3),
            "method": self.method,
            "path": self.path,
            "status": self.status,
        }


def parse_time(text: str) -> float:
    """An ISO-8601 UTC time (`…T16:52:42.123Z`) as milliseconds since the epoch."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000


def iso(ms: float) -> str:
    stamp = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


def from_entry(entry: dict[str, Any]) -> Request:
    """A journal entry as `GET /__admin/tenants/{id}/requests` answers it."""
    body = entry.get("body")
    return Request(
        id=int(entry["id"]),
        at_ms=parse_time(entry["at"]),
        duration_ms=float(entry.get("durationMs") or 0.0),
        method=str(entry["method"]),
        path=str(entry["path"]),
        status=entry.get("status"),
        body=None if body is None else json.dumps(body, sort_keys=True, separators=(",", ":")),
    )


def from_entries(entries: list[dict[str, Any]]) -> list[Request]:
    """Journal entries (any order) as requests, oldest first."""
    return sorted((from_entry(entry) for entry in entries), key=lambda r: r.id)
