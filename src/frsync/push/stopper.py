"""Stopping a push politely: Ctrl-C lets the request in flight finish, then nothing more is sent."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

__all__ = ["Interrupted", "Stopper"]


class Interrupted(Exception):
    """Raised by `Stopper.sleep` once a stop was asked: wait no longer, send nothing more."""


class Stopper:
    """A stop request shared by the signal handler, the client's waits and the send loop.

    A plain flag rather than a `threading.Event`: a signal handler must not take a lock the
    interrupted code may be holding.
    """

    def __init__(self, *, poll_interval: float = 0.05) -> None:
        self._stopped = False
        self._poll_interval = poll_interval

    @property
    def stopped(self) -> bool:
        return self._stopped

    def stop(self) -> None:
        self._stopped = True

    def sleep(self, seconds: float) -> None:
        """The client's sleep: ends early, raising `Interrupted`, once a stop is asked."""
        deadline = time.monotonic() + seconds
        while not self._stopped:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            time.sleep(min(remaining, self._poll_interval))
        raise Interrupted

    @contextmanager
    def stop_on_sigint(self, notice: Callable[[], None]) -> Iterator[None]:
        """First Ctrl-C: finish the request in flight, then stop. A second one: stop now."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handle(signum: int, frame: FrameType | None) -> None:
            if self.stopped:
                raise KeyboardInterrupt
            self.stop()
            notice()

        previous = signal.signal(signal.SIGINT, handle)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)
