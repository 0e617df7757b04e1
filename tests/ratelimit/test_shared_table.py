"""The shared-memory table (`shm:///path`): one bucket per key for every process of a host,
bounded in size, safe when a holder dies, and reset at once for all of them."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from frsync.ratelimit import SharedMemoryStore, open_rate_limit_store
from frsync.ratelimit.shared import path_from_url


def _hammer(path: str, hits: int, start: multiprocessing.synchronize.Event) -> None:  # type: ignore[name-defined]
    import asyncio

    async def run() -> int:
        store = SharedMemoryStore(path)
        start.wait()
        admitted = sum([(await store.hit("token", 100, 0.001)).allowed for _ in range(hits)])
        await store.close()
        return admitted

    os._exit(asyncio.run(run()))  # the exit status carries the count (< 256)


def test_four_processes_share_one_bucket(tmp_path: Path) -> None:
    """4 processes x 100 hits on one key of capacity 100 (refill negligible): exactly 100
    admitted in all, where separate buckets would admit 400."""
    path = str(tmp_path / "buckets")
    SharedMemoryStore(path)  # create the table first, as `serve` does
    context = multiprocessing.get_context("spawn")
    start = context.Event()
    processes = [context.Process(target=_hammer, args=(path, 100, start)) for _ in range(4)]
    for process in processes:
        process.start()
    start.set()
    for process in processes:
        process.join(60)
    admitted = [process.exitcode for process in processes]
    assert sum(admitted) == 100, admitted  # type: ignore[arg-type]


async def test_two_opens_of_one_file_see_one_bucket(tmp_path: Path, clock: Any) -> None:
    a = SharedMemoryStore(str(tmp_path / "b"), clock=clock)
    b = SharedMemoryStore(str(tmp_path / "b"), clock=clock)
    try:
        assert [(await a.hit("k", 3, 1.0)).used for _ in range(2)] == [1, 2]
        assert (await b.hit("k", 3, 1.0)).used == 3
        assert not (await a.hit("k", 3, 1.0)).allowed
        assert (await b.hit("other", 3, 1.0)).used == 1
    finally:
        await a.close()
        await b.close()


async def test_the_table_stays_the_same_size_whatever_the_keys(tmp_path: Path, clock: Any) -> None:
    """100,000 distinct keys, 1 ms apart, through a table of 4,096 slots: one hit keeps a
    bucket short of full for 0.5 s (at 2/s), so ~500 are live at a time; slots whose time has
    passed are reused, and the file never grows."""
    path = tmp_path / "b"
    store = SharedMemoryStore(str(path), clock=clock, slots=4096)
    size = path.stat().st_size
    try:
        for i in range(100_000):
            assert (await store.hit(f"key-{i}", 40, 2.0)).used == 1
            assert (await store.hit(f"key-{i}", 40, 2.0)).used == 2  # its own bucket
            clock.advance(0.001)
        assert path.stat().st_size == size
        assert store.evictions == 0
    finally:
        await store.close()


async def test_a_crowded_table_resets_the_fullest_bucket_rather_than_grow(
    tmp_path: Path, clock: Any
) -> None:
    """1,000 keys drained at once into 256 slots: they cannot all be held, so a crowded
    window gives its slot nearest to full to the new key; every hit is still answered."""
    path = tmp_path / "b"
    store = SharedMemoryStore(str(path), clock=clock, slots=256, window=16)
    size = path.stat().st_size
    try:
        for i in range(1000):
            decisions = [await store.hit(f"key-{i}", 40, 2.0) for _ in range(41)]
            assert [d.allowed for d in decisions] == [True] * 40 + [False]
        assert store.evictions > 0
        assert path.stat().st_size == size
    finally:
        await store.close()


async def test_reset_fills_every_bucket_for_every_opener(tmp_path: Path, clock: Any) -> None:
    a = SharedMemoryStore(str(tmp_path / "b"), clock=clock)
    b = SharedMemoryStore(str(tmp_path / "b"), clock=clock)
    try:
        for _ in range(3):
            await a.hit("k", 3, 0.01)
        assert not (await b.hit("k", 3, 0.01)).allowed
        await a.reset()
        assert (await b.hit("k", 3, 0.01)).used == 1
    finally:
        await a.close()
        await b.close()


def _hold_lock_and_die(path: str) -> None:
    import fcntl

    fd = os.open(path, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.kill(os.getpid(), signal.SIGKILL)


async def test_a_worker_killed_holding_the_lock_does_not_block_the_others(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "b")
    store = SharedMemoryStore(path)
    try:
        process = multiprocessing.get_context("spawn").Process(
            target=_hold_lock_and_die, args=(path,)
        )
        process.start()
        process.join(30)
        assert process.exitcode == -signal.SIGKILL
        started = time.monotonic()
        assert (await store.hit("k", 3, 1.0)).allowed
        assert time.monotonic() - started < 5.0  # a lock left held would block for good
    finally:
        await store.close()


async def test_a_table_from_another_shape_is_cleared(tmp_path: Path, clock: Any) -> None:
    path = str(tmp_path / "b")
    old = SharedMemoryStore(path, clock=clock, slots=1024)
    await old.hit("k", 3, 0.01)
    await old.close()
    new = SharedMemoryStore(path, clock=clock)
    try:
        assert (await new.hit("k", 3, 0.01)).used == 1
    finally:
        await new.close()


async def test_shm_url_opens_the_shared_table(tmp_path: Path) -> None:
    store = open_rate_limit_store(f"shm://{tmp_path}/buckets")
    try:
        assert isinstance(store, SharedMemoryStore)
        assert await store.status() == "ok"
    finally:
        await store.close()
    with pytest.raises(ValueError, match="shm:///absolute"):
        path_from_url("shm://host/buckets")
