"""What each security family tried and what it saw, counted as it goes.

Every request of the suite goes through `Recorder.inspect` (an httpx response hook), which
counts it and notes anything that should never be in an answer: a 5xx, a missing safety
header, or a stack trace, SQL, a file path or an issued token in the body or headers. Tests
add their own findings (cross-tenant reads or writes, rows changed by a rejected request).

`bench/security_report.py` runs the suite with FRSYNC_SECURITY_TALLY=path and turns the JSON
dumped at the end of the session into the table of RELIABILITY.md.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx

from tests.support import TOKENS

# Text that would betray internals in an answer. Case-sensitive on purpose: a problem detail
# such as "Unknown field `select`." must not count, an SQL keyword in capitals would.
LEAK_PATTERNS = re.compile(
    r"Traceback|File \"|site-packages|/work/|/tmp/|/usr/|\.py\b|sqlite3|asyncpg|psycopg"
    r"|SELECT |INSERT |UPDATE |DELETE FROM|Exception"
)
# Tokens minted by the suite itself, beyond the fixture's; looked for in every answer too.
EXTRA_SECRETS: set[str] = set()


@dataclass
class FamilyCounts:
    """One row of the report: a test family on one store."""

    family: str
    store: str
    cases: int = 0  # attack cases tried (a case may take several requests)
    requests: int = 0
    server_errors: int = 0
    cross_tenant: int = 0  # reads or writes of an FR outside the token's scope
    rows_changed: int = 0  # rows changed by requests that were answered >= 400
    header_misses: int = 0  # answers without Cache-Control: no-store or nosniff
    body_leaks: int = 0  # answers holding a trace, SQL, a path or a token
    notes: list[str] = field(default_factory=list)


TALLY: dict[tuple[str, str], FamilyCounts] = {}


def counts_for(family: str, store: str) -> FamilyCounts:
    return TALLY.setdefault((family, store), FamilyCounts(family, store))


def _secrets() -> list[str]:
    return [*TOKENS.values(), *EXTRA_SECRETS]


class Recorder:
    """Counts one family's requests on one store and checks every answer on the way."""

    def __init__(self, family: str, store: str) -> None:
        self.counts = counts_for(family, store)
        self.findings: list[str] = []

    def case(self, n: int = 1) -> None:
        self.counts.cases += n

    def finding(self, kind: str, what: str) -> None:
        """`kind` is one of cross_tenant, rows_changed; `what` says which request."""
        setattr(self.counts, kind, getattr(self.counts, kind) + 1)
        self.findings.append(f"{kind}: {what}")

    async def inspect(self, response: httpx.Response) -> None:
        await response.aread()
        self.check(response.status_code, dict(response.headers), response.content)

    def check(self, status: int, headers: dict[str, str], body: bytes) -> None:
        """Count one answer and note what it must never hold (headers with lower-case names)."""
        self.counts.requests += 1
        where = f"{status} {body[:120]!r}"
        if status >= 500:
            self.counts.server_errors += 1
            self.findings.append(f"5xx: {where}")
        if headers.get("cache-control") != "no-store" or (
            headers.get("x-content-type-options") != "nosniff"
        ):
            self.counts.header_misses += 1
            self.findings.append(f"headers: {where}")
        text = body.decode("utf-8", "replace") + "\n" + "\n".join(headers.values())
        if (status >= 400 and LEAK_PATTERNS.search(text)) or any(s in text for s in _secrets()):
            self.counts.body_leaks += 1
            self.findings.append(f"leak: {where}")

    def assert_clean(self) -> None:
        """The family's verdict: nothing found. Called at the end of each test."""
        assert not self.findings, "\n".join(self.findings[:20])


def dump_tally(path: Path) -> None:
    rows = [asdict(c) for c in sorted(TALLY.values(), key=lambda c: (c.family, c.store))]
    path.write_text(json.dumps(rows, indent=1))
