"""Family 3 — secrets at rest, in logs and in answers; forged log lines (OWASP API2/API8).

A full workload (every token reading and writing, bad tokens, bad bodies) runs with the
access log on. Afterwards no issued token may appear in the database (SQLite: the main
file, its WAL and shared-memory file as raw bytes; PostgreSQL: the logical dump, and, when
the server's data directory is readable, this database's files after a CHECKPOINT and the
WAL segments, searched for the token minted by this run), in any log line, or in any answer. Requests
whose method, path or headers carry CR, LF or ANSI escapes must still give exactly one log
line each, of valid JSON, with those characters escaped.
"""

from __future__ import annotations

import io
import json
import logging
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from frsync.logs import _JsonishFormatter
from frsync.tokens import hash_token
from tests.security.asgi import raw_request
from tests.security.conftest import ROOMY_BUCKET, recording_client
from tests.security.dump import Dumper
from tests.security.tally import EXTRA_SECRETS, Recorder
from tests.support import TOKENS, make_settings, run_sql, running_app

# Unique to this run, so finding it in PostgreSQL's cluster-wide WAL could only be this test.
MINTED = f"tok-minted-during-the-run-{secrets.token_hex(12)}"
# Raw in a log line these would end it or drive the terminal. U+2028/2029 are not here: JSON
# allows them raw and log shippers split on LF only (Python's str.splitlines is the odd one).
CONTROL = ("\r", "\n", "\x1b", "\x00", "\x07", "\x08")
FORGED_PATHS = [
    '/fulfillment-requests/221\r\n{"requestId":"forged","status":200}',
    "/fulfillment-requests/\x1b[2J\x1b[31mALERT\x1b[0m",
    "/fulfillment-requests/221/accounting-sync\n127.0.0.1 - admin logged in",
    "/healthz\r\n\r\nHTTP/1.1 200 OK",
    "/fulfillment-requests/\u2028\u2029\x00\x7f\x08\x08\x08",
    "/nope/" + "\x1b]0;pwned\x07" * 50,
]
FORGED_METHODS = ["GET", "PATCH", "GET\r\nX-Forged: 1", "\x1b[31mDELETE"]


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """Everything the frsync loggers write, formatted exactly as `frsync serve` does."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(_JsonishFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("frsync")
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    yield stream
    logger.removeHandler(handler)
    logger.setLevel(old_level)


async def _workload(app: object, recorder: Recorder) -> None:
    for name, token in [*TOKENS.items(), ("minted", MINTED)]:
        async with recording_client(app, recorder, token) as client:  # type: ignore[arg-type]
            for fr_id in (221, 222, 226, 301, 302):
                recorder.case(4)
                await client.get(f"/fulfillment-requests/{fr_id}")
                await client.get(f"/fulfillment-requests/{fr_id}/accounting-sync/history")
                await client.patch(
                    f"/fulfillment-requests/{fr_id}/accounting-sync",
                    json={"accountingSynced": True, "externalAccountingId": f"{name}-{fr_id}"},
                )
                await client.patch(
                    f"/fulfillment-requests/{fr_id}/accounting-sync",
                    content=f'{{"accountingError": "{token}", "x": 1}}'.encode(),
                    headers={"Content-Type": "application/json"},
                )
            await client.get("/fulfillment-requests", params={"filterPageSize": "500"})
            await client.get("/fulfillment-requests/count")
    async with recording_client(app, recorder, "tok-wrong-" + MINTED, address="10.3.0.1") as bad:  # type: ignore[arg-type]
        recorder.case()
        await bad.get("/fulfillment-requests/221")


def _raw_database_bytes(database_url: str) -> bytes:
    path = Path(database_url.removeprefix("sqlite:///"))
    files = [path, *path.parent.glob(path.name + "-*")]  # -wal and -shm
    return b"".join(f.read_bytes() for f in files if f.exists())


async def _postgres_files(dumper: Dumper) -> tuple[list[Path], list[Path]] | None:
    """This database's data files and the cluster's WAL segments, when this process may
    read the server's data directory (a local server, tests run as its owner or root)."""
    row = await dumper._pg.fetchrow(
        "SELECT current_setting('data_directory') AS dir, oid FROM pg_database"
        " WHERE datname = current_database()"
    )
    await dumper._pg.execute("CHECKPOINT")  # push what the run wrote into the data files
    base, wal = Path(row["dir"]) / "base" / str(row["oid"]), Path(row["dir"]) / "pg_wal"
    if not (os.access(base, os.R_OK) and os.access(wal, os.R_OK)):
        return None
    return [f for f in base.iterdir() if f.is_file()], [f for f in wal.iterdir() if f.is_file()]


async def test_no_token_at_rest_in_logs_or_answers_and_no_forged_log_lines(
    tmp_path: Path, database_url: str, store_name: str, log_lines: io.StringIO
) -> None:
    recorder = Recorder("3 secrets and log forging", store_name)
    if store_name == "postgresql":
        # The database is shared with this worker's earlier tests, emptied by DELETE: their
        # rows (a token sent as an external id, say) linger as dead tuples in the data files
        # read below. Rewriting every table leaves this test's own bytes alone on disk.
        await run_sql(database_url, "VACUUM FULL")
    settings = make_settings(tmp_path, database_url=database_url, log_requests=True, **ROOMY_BUCKET)
    EXTRA_SECRETS.add(MINTED)
    issued = [*TOKENS.values(), MINTED]
    async with running_app(settings) as app:
        await app.state.store.create_token(hash_token(MINTED), "account", 1, "minted")
        await _workload(app, recorder)
        forged = 0
        for method in FORGED_METHODS:
            for path in FORGED_PATHS:
                recorder.case()
                forged += 1
                headers = [(b"x-api-token", TOKENS["account1"].encode()),
                           (b"user-agent", b"evil\r\n{\"forged\": true}\x1b[0m"),
                           (b"x-request-id", b"forged-id\r\nstatus=200")]  # fmt: skip
                recorder.check(*await raw_request(app, method, path, headers))
        dumper = await Dumper(database_url).open()
        dump_text = repr(await dumper.dump())
        pg_files = await _postgres_files(dumper) if store_name == "postgresql" else None
        await dumper.close()
    at_rest = _raw_database_bytes(database_url) if store_name == "sqlite" else dump_text.encode()
    where = "SQLite file + WAL + SHM bytes" if store_name == "sqlite" else "logical dump"
    if pg_files is not None:
        data_files, wal_files = pg_files
        at_rest += b"".join(f.read_bytes() for f in data_files)
        wal = b"".join(f.read_bytes() for f in wal_files)
        assert MINTED.encode() not in wal, "the minted token is in PostgreSQL's WAL"
        where = f"logical dump + {len(data_files)} data files + {len(wal_files)} WAL segments"
    logged = log_lines.getvalue()
    for secret in issued:
        assert secret.encode() not in at_rest, "token at rest"
        assert secret not in dump_text and secret not in logged, "token in dump or log"
    lines = logged.rstrip("\n").split("\n")
    access = [json.loads(line) for line in lines if line.startswith("{")]
    assert len(access) == len(lines), "every log line of a request is one JSON object"
    assert len(access) == recorder.counts.requests, "one line per request, none forged"
    for line in lines:
        assert not any(c in line for c in CONTROL), repr(line)
    assert {entry["path"] for entry in access} >= set(FORGED_PATHS)  # escaped, not dropped
    recorder.counts.notes.append(
        f"{len(lines)} log lines checked, {forged} forging requests, {len(issued)} tokens"
        f" searched in: {where}, logs, answers"
    )
    recorder.assert_clean()
