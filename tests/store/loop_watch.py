"""A tripwire for the event loop: asyncio's debug mode logs every callback that runs longer
than `slow_callback_duration`; this collects those durations so a test can assert on the
longest one (and report it)."""

from __future__ import annotations

import asyncio
import gc
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager

_TOOK = re.compile(r"took (\d+(?:\.\d+)?) seconds")


class _Collector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.blocks: list[float] = []
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        match = _TOOK.search(message)
        # The test's own coroutine is not the code under test (it may sleep on purpose).
        if match and " coro=<test_" not in message:
            self.blocks.append(float(match[1]))
            self.messages.append(message)


@contextmanager
def loop_blocks(threshold: float) -> Iterator[list[float]]:
    """Within the block, every loop callback slower than `threshold` seconds is recorded
    (seconds) in the yielded list."""
    # Garbage left by earlier tests (SQLAlchemy's, from migrations) is collected now rather
    # than in the middle of the measurement, where its pause would be blamed on the code.
    gc.collect()
    loop = asyncio.get_running_loop()
    collector = _Collector()
    logger = logging.getLogger("asyncio")
    was_debug, was_slow = loop.get_debug(), loop.slow_callback_duration
    logger.addHandler(collector)
    loop.set_debug(True)
    loop.slow_callback_duration = threshold
    try:
        yield collector.blocks
    finally:
        loop.set_debug(was_debug)
        loop.slow_callback_duration = was_slow
        logger.removeHandler(collector)
