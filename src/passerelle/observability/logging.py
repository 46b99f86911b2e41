"""Structured JSON logs, written by a background thread so the event loop never blocks on I/O.

Message content is never logged unless ``server.log_content`` is on; records carry ids,
models, sizes, timings and statuses.
"""

from __future__ import annotations

import logging
import logging.handlers
import queue
import sys
import time
from typing import Any

import msgspec

LOGGER = logging.getLogger("passerelle")
_listener: logging.handlers.QueueListener | None = None


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "event": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if fields:
            entry.update(fields)
        if record.exc_info and record.levelno >= logging.ERROR:
            entry["error"] = self.formatException(record.exc_info).splitlines()[-1]
        return msgspec.json.encode(entry).decode()


def setup_logging(level: str = "info") -> None:
    global _listener
    if _listener is not None:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    _listener = logging.handlers.QueueListener(records, handler)
    _listener.start()
    LOGGER.handlers[:] = [logging.handlers.QueueHandler(records)]
    LOGGER.setLevel(level.upper())
    LOGGER.propagate = False


def stop_logging() -> None:
    global _listener
    if _listener is not None:
        _listener.stop()
        _listener = None


def log(event: str, level: int = logging.INFO, **fields: Any) -> None:
    if LOGGER.isEnabledFor(level):
        LOGGER.log(level, event, extra={"fields": fields})
