"""A py-spy raw profile (`bench/results/pyspy-*.txt`) by layer: which thread, and on the
event-loop thread which part of the stack, by the innermost frsync frame of each sample
(the innermost frame at all when no frsync code is on the stack).

`python -m bench.layers bench/results/pyspy-profile.txt`
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

from bench.hotpath import _name

# (what a frame name starts with, the layer it stands for), first match wins.
_LAYERS = [
    ("frsync/store/sqlite_writer.py:Writer._serve", "writer thread: waiting for work"),
    ("frsync/store/sqlite_writer.py:Writer._commit", "writer thread: COMMIT"),
    ("frsync/store/sqlite_sync.py", "writer thread: the PATCH transaction"),
    ("frsync/store/sqlite_writer.py", "writer thread: batching, locking, settling"),
    ("frsync/store/sqlite_checkpoint.py", "WAL checkpoint thread"),
    ("frsync/store/console_sqlite.py", "usage flush (console), every 2 s"),
    ("frsync/store/sqlite.py:SqliteStore.find_token", "loop: token lookup (cache miss)"),
    ("frsync/store/sqlite.py:SqliteStore.revoked", "loop: revoked-token check"),
    ("frsync/store/sqlite_write_process.py:_Worker", "write process: its connections"),
    ("frsync/store/sqlite_write_process.py", "loop: hand-off to the write process"),
    ("frsync/store/sqlite.py:SqliteStore.transaction", "loop: hand-off to the writer"),
    ("frsync/store/sqlite.py:SqliteStore.sync_accounting", "loop: hand-off to the writer"),
    ("frsync/ratelimit", "loop: rate limiter"),
    ("frsync/api/access_log.py", "loop: access log"),
    ("frsync/api/middleware.py", "loop: request context (id, headers, metrics)"),
    ("frsync/api/request_id.py", "loop: request context (id, headers, metrics)"),
    ("frsync/api/metrics.py", "loop: request context (id, headers, metrics)"),
    ("frsync/api/body.py", "loop: body (read, decode, checks)"),
    ("frsync/api/violations.py", "loop: body (read, decode, checks)"),
    ("frsync/domain.py", "loop: body (read, decode, checks)"),
    ("frsync/console/usage.py", "loop: usage counting"),
    ("frsync/api/auth.py", "loop: auth (token hash, cache)"),
    ("frsync/tokens.py", "loop: auth (token hash, cache)"),
    ("frsync/api/call.py", "loop: lean dispatch and answer"),
    ("frsync/api/routes.py", "loop: handler"),
    ("frsync/app.py", "loop: lean dispatch and answer"),
    ("frsync/models.py", "loop: handler"),
    ("frsync/server_protocol.py", "loop: uvicorn / httptools / uvloop / socket"),
    ("uvicorn/", "loop: uvicorn / httptools / uvloop / socket"),
    ("starlette/", "loop: Starlette"),
    ("asyncio/runners.py:Runner.run", "loop: uvloop itself (epoll, socket I/O, callbacks)"),
]


_LAUNCHER = ("frsync/supervisor.py", "frsync/cli/", "frsync/__main__.py")


def layer_of(frames: list[str]) -> str:
    ours = [f for f in frames if f.startswith("frsync/") and not f.startswith(_LAUNCHER)]
    inner = ours[-1] if ours else frames[-1]
    for prefix, layer in _LAYERS:
        if inner.startswith(prefix):
            return layer
    return f"other ({inner})"


def layers(raw: str) -> tuple[int, Counter[str]]:
    found: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        frames = [_name(f) for f in stack.split(";") if not f.startswith("process ")]
        if frames:
            total += int(count_text)
            found[layer_of(frames)] += int(count_text)
    return total, found


def main() -> None:
    total, found = layers(Path(sys.argv[1]).read_text())
    print(f"{total} samples\n\n| share | layer |\n|---:|---|")
    for layer, count in sorted(found.items()):
        print(f"| {100 * count / total:.1f}% | {layer} |")


if __name__ == "__main__":
    main()
