"""The ceiling: a bare ASGI app under the same uvicorn (`httptools`, `uvloop`) doing, per
request, a one-row UPDATE through the same writer thread with group commit (SQLite:
`SqliteStore.transaction`) or one UPDATE statement (PostgreSQL: asyncpg), and a 204.

No auth, limiter, body parsing, history or log: the stack's own physical limit on this
machine, measured in the same run as frsync's PATCH so that every PATCH figure can be read
as a share of it. `python -m bench.ceiling URL PORT WORKERS`.
"""

from __future__ import annotations

import os
import re
import sys
from typing import Any

import uvicorn

from frsync.models import now_ms

_FR = re.compile(r"^/fulfillment-requests/(\d+)/")
_SQLITE = "UPDATE fulfillment_request_accounting SET updated_at = ? WHERE id = ?"
_POSTGRES = "UPDATE fulfillment_request_accounting SET updated_at = $1 WHERE id = $2"


class Ceiling:
    def __init__(self) -> None:
        self.update: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        while (await receive()).get("more_body"):
            pass
        found = _FR.match(scope["path"])
        if found is not None:
            await self.update(int(found[1]))
        status = 204 if found is not None else 200
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def _lifespan(self, receive: Any, send: Any) -> None:
        await receive()
        url = os.environ["FRSYNC_CEILING_URL"]
        if url.startswith("sqlite"):
            from frsync.store.sqlite import SqliteStore

            store = SqliteStore.from_url(url)

            async def update(fr_id: int) -> None:
                await store.transaction(lambda db: db.execute(_SQLITE, (now_ms(), fr_id)))

        else:
            import asyncpg

            pool = await asyncpg.create_pool(url, min_size=1, max_size=10)

            async def update(fr_id: int) -> None:
                await pool.execute(_POSTGRES, now_ms(), fr_id)

        self.update = update
        await send({"type": "lifespan.startup.complete"})
        await receive()
        await send({"type": "lifespan.shutdown.complete"})


app = Ceiling()


def main() -> None:
    url, port, workers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    os.environ["FRSYNC_CEILING_URL"] = url
    uvicorn.run(
        "bench.ceiling:app",
        host="127.0.0.1",
        port=port,
        workers=workers,
        http="httptools",
        loop="uvloop",
        lifespan="on",
        access_log=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
