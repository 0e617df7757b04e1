"""Token buckets shared by the worker processes of one host, without Redis: a fixed-size table
of GCRA states in a memory-mapped file, guarded by a file lock.

`frsync serve --workers N` (N > 1) without a Redis URL sets this up (`shm:///path`), so every
worker charges the same bucket per token and the documented limit holds (SPEC §4): without
it each worker would keep its own bucket and a token would get N times its limit.

Why by hand: no maintained library offers a cross-process rate-limit table that survives a
worker killed mid-update. `multiprocessing.shared_memory` gives the bytes but no lock that a
dead holder releases (a `multiprocessing.Lock` held by a `kill -9`ed worker stays taken and
every other worker would hang on it), and uvicorn spawns its workers from a pickled config,
so nothing but a path can be handed to them. `fcntl.flock` is released by the kernel when its
holder dies, and a GCRA state is one number, so the table is only a small open-addressing
hash: each key (16 bytes of BLAKE2b of the bucket key) lives in one of `WINDOW` slots after
its hash position, next to its theoretical arrival time (TAT, see `memory.py`).

Bounded by construction: a slot whose TAT is in the past holds a full bucket, exactly as if
the key had never been seen, so it is free for any other key. The table is `SLOTS` slots
(~1.5 MiB) whatever the number of tokens or client addresses; only when all `WINDOW` slots
around a position hold buckets still refilling does a new key take the one nearest to full
(that key's bucket then starts full again: counted in `evictions`, logged once). At the
default 40 + 2/s a bucket is live for at most 20 s, so that needs tens of thousands of
tokens busy at once on one host.

The lock is taken without waiting on the event loop; only when another worker holds it at
that instant (it does so for microseconds) does the hit wait for it in a thread, so the event
loop never blocks on another process.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import logging
import mmap
import os
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import unquote, urlsplit

from frsync.ratelimit.base import Decision
from frsync.ratelimit.memory import Clock, check_limits, step

log = logging.getLogger("frsync.ratelimit")

SLOTS = 65_536
WINDOW = 64  # slots probed per key
_KEY = 16  # bytes of digest per slot
_MAGIC = b"FRSYNCRL"
_VERSION = 1
# magic, version, slots, window, boot id (36 bytes of text); padded to 64 bytes.
_HEADER = struct.Struct("<8sIII36s")
_HEADER_SIZE = 64


def _boot_id() -> bytes:
    """This boot's id: monotonic time restarts at boot, so TATs from before are meaningless."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_bytes().strip()[:36].ljust(36)
    except OSError:
        return b"-" * 36


def path_from_url(url: str) -> str:
    """`shm:///dev/shm/frsync/buckets` → `/dev/shm/frsync/buckets`."""
    parts = urlsplit(url)
    if parts.netloc or not parts.path:
        raise ValueError("a shared rate-limit table URL is shm:///absolute/path/to/file")
    return unquote(parts.path)


class SharedMemoryStore:
    """Buckets in a memory-mapped file every worker of this host opens; see the module doc."""

    def __init__(
        self,
        path: str,
        *,
        clock: Clock = time.monotonic,
        slots: int = SLOTS,
        window: int = WINDOW,
    ) -> None:
        self._clock = clock
        self._slots = slots
        self._window = window
        rows = slots + window  # the last window never wraps around
        self._keys_at = _HEADER_SIZE
        self._tats_at = _HEADER_SIZE + rows * _KEY
        self._size = self._tats_at + rows * 8
        self._header = _HEADER.pack(_MAGIC, _VERSION, slots, window, _boot_id())
        # flock is per open file description and so does not exclude this process's threads
        # from each other; this lock does.
        self._thread_lock = threading.Lock()
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            with self._locked():
                self._prepare()
            self._map = mmap.mmap(self._fd, self._size)
        except BaseException:
            os.close(self._fd)
            raise
        self._tats = memoryview(self._map)[self._tats_at : self._size].cast("d")
        self.evictions = 0

    @classmethod
    def from_url(
        cls, url: str, *, timeout: float = 0.25, clock: Clock = time.monotonic
    ) -> SharedMemoryStore:
        """Build from `shm:///path`; the file is created (or re-initialised) as needed."""
        return cls(path_from_url(url), clock=clock)

    async def hit(self, key: str, capacity: int, rate: float) -> Decision:
        """Take one token from `key`'s bucket if there is one; a refused hit costs nothing."""
        check_limits(capacity, rate)
        digest = hashlib.blake2b(key.encode(), digest_size=_KEY).digest()
        if self._thread_lock.acquire(blocking=False):
            try:
                if self._try_flock():
                    try:
                        return self._step(digest, capacity, rate)
                    finally:
                        fcntl.flock(self._fd, fcntl.LOCK_UN)
            finally:
                self._thread_lock.release()
        return await asyncio.to_thread(self._hit_waiting, digest, capacity, rate)

    async def status(self) -> str:
        """Always 'ok': the table is local to this host and every worker shares it."""
        return "ok"

    async def reset(self) -> None:
        """Every bucket full again (the sandbox's reset), for every worker at once."""
        await asyncio.to_thread(self._clear)

    async def close(self) -> None:
        """Unmap the table; the file stays for the other workers (`serve` removes it)."""
        if self._map.closed:
            return
        self._tats.release()
        self._map.close()
        os.close(self._fd)

    # -- inside the lock -----------------------------------------------------------------

    def _step(self, digest: bytes, capacity: int, rate: float) -> Decision:
        now = self._clock()
        start = int.from_bytes(digest[:8], "little") % self._slots
        first = self._keys_at + start * _KEY
        keys = self._map[first : first + self._window * _KEY]
        found = keys.find(digest)
        while found > 0 and found % _KEY:  # a match straddling two slots is no match
            found = keys.find(digest, found + 1)
        if found >= 0:
            slot = start + found // _KEY
            tat = self._tats[slot]
        else:
            slot = self._free_slot(start, now)
            tat = now
        new_tat, decision = step(tat, now, capacity, rate)
        if decision.allowed:
            self._tats[slot] = new_tat
            if found < 0:
                at = self._keys_at + slot * _KEY
                self._map[at : at + _KEY] = digest
        return decision

    def _free_slot(self, start: int, now: float) -> int:
        window = self._tats[start : start + self._window].tolist()
        for offset, tat in enumerate(window):
            if tat <= now:
                return start + offset
        # Every slot here holds a bucket still refilling: take the one nearest to full.
        self.evictions += 1
        if self.evictions == 1:
            log.warning(
                "shared rate-limit table crowded: a bucket was reset to full to make room"
                " (%d slots)",
                self._slots,
            )
        return start + window.index(min(window))

    def _hit_waiting(self, digest: bytes, capacity: int, rate: float) -> Decision:
        with self._locked():
            return self._step(digest, capacity, rate)

    def _clear(self) -> None:
        with self._locked():
            self._map[_HEADER_SIZE:] = bytes(self._size - _HEADER_SIZE)

    def _prepare(self) -> None:
        """Size the file and (re)write its header; a table of another shape or another boot
        is cleared (its TATs are on another clock)."""
        current = os.pread(self._fd, _HEADER.size, 0)
        if os.fstat(self._fd).st_size == self._size and current == self._header:
            return
        # Zeroed by writing, not by truncating to 0: a process that still maps the old file
        # would take a SIGBUS touching a page past its end.
        os.ftruncate(self._fd, self._size)
        os.pwrite(self._fd, self._header + bytes(self._size - len(self._header)), 0)

    # -- locking -------------------------------------------------------------------------

    def _try_flock(self) -> bool:
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """Both locks, waiting for them (never on the event loop: in a thread or at start)."""
        with self._thread_lock:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
