"""The SQLite store's read connections for reads that may scan many rows, used from threads.

The store's loop connection serves lookups (a token, an FR, a page of history: tens of
microseconds, less than a thread handoff). A count over a million-FR scope, a page or a day
of history takes tens of milliseconds or more, which on the loop would hold up every other
request of the worker: the API's list and count and the console's big reads run here instead
(`SqliteStore.read_off_loop`), in threads (sqlite3 releases the GIL while a statement runs),
several side by side, and never write: in WAL mode a reader neither waits for nor blocks
the writer.
"""

from __future__ import annotations

import asyncio
import queue
import sqlite3
from collections.abc import Callable
from typing import TypeVar

from frsync.errors import StoreBusy

T = TypeVar("T")
READERS = 3  # the console overview's five reads in about two rounds


class Readers:
    def __init__(self, path: str, busy_timeout: float, size: int = READERS) -> None:
        self._free: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()
        self._all = [self._connect(path, busy_timeout) for _ in range(size)]
        for connection in self._all:
            self._free.put(connection)

    @staticmethod
    def _connect(path: str, busy_timeout: float) -> sqlite3.Connection:
        connection = sqlite3.connect(
            path, isolation_level=None, check_same_thread=False, timeout=busy_timeout
        )
        connection.execute("PRAGMA query_only=ON")
        connection.execute("PRAGMA cache_size=-32768")
        connection.execute("PRAGMA mmap_size=268435456")
        return connection

    async def run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """`work(connection)` in a worker thread; a locked or unreadable file is StoreBusy."""
        return await asyncio.to_thread(self._run, work)

    def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        connection = self._free.get()
        try:
            return work(connection)
        except sqlite3.OperationalError as error:  # a read fails only for "not now" reasons
            raise StoreBusy() from error
        finally:
            self._free.put(connection)

    def close(self) -> None:
        for connection in self._all:
            connection.close()
