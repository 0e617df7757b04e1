"""Logging for the server: one line per record on stderr; access lines are already JSON."""

from __future__ import annotations

import logging
import sys


class _JsonishFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        if record.name == "frsync.access":
            return record.getMessage()
        line = super().format(record)
        request_id = getattr(record, "request_id", None)
        return f"{line} requestId={request_id}" if request_id else line


def configure_logging(level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonishFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
