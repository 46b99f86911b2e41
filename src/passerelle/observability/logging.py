"""Structured JSON logs, one line per event, batched and written off the event loop.

The request path only encodes a line and appends it to a buffer; a background task writes the
buffer every ``FLUSH_INTERVAL`` seconds in a worker thread.  Message content is never logged:
records carry ids, models, sizes, timings and statuses.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from typing import Any

import msgspec

FLUSH_INTERVAL = 0.2
MAX_BUFFERED = 10_000  # lines kept while the writer is behind; older lines beyond are dropped (and counted)
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
_NAMES = {value: name for name, value in _LEVELS.items()}
_encode = msgspec.json.Encoder().encode


class JsonLog:
    def __init__(self, fd: int = 2, level: int = logging.INFO) -> None:
        self.fd = fd
        self.level = level
        self.dropped = 0
        self._lines: list[bytes] = []
        self._writer: asyncio.Task[None] | None = None

    def emit(self, level: int, event: str, fields: dict[str, Any]) -> None:
        if level < self.level:
            return
        now = time.time()
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"
        line = _encode({"ts": stamp, "level": _NAMES.get(level, "info"), "event": event, **fields})
        if len(self._lines) >= MAX_BUFFERED:
            self.dropped += 1
            return
        self._lines.append(line)
        if self._writer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no event loop (start-up, CLI): write at once
                self.flush()
                return
            self._writer = loop.create_task(self._write_periodically())

    async def _write_periodically(self) -> None:
        try:
            while True:
                await asyncio.sleep(FLUSH_INTERVAL)
                data = self._take()
                if data:
                    # A cancellation does not stop the thread: the lines after its own wait for it to finish.
                    write = asyncio.ensure_future(asyncio.to_thread(_write_all, self.fd, data))
                    try:
                        await asyncio.shield(write)
                    except asyncio.CancelledError:
                        await asyncio.wait({write})
                        raise
        except asyncio.CancelledError:
            self.flush()
            raise

    def _take(self) -> bytes:
        if not self._lines:
            return b""
        lines, self._lines = self._lines, []
        if self.dropped:
            lines.append(_encode({"event": "log_lines_dropped", "count": self.dropped}))
            self.dropped = 0
        return b"\n".join(lines) + b"\n"

    def flush(self) -> None:
        data = self._take()
        if data:
            _write_all(self.fd, data)

    async def aclose(self) -> None:
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
            self._writer = None
        self.flush()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


LOG = JsonLog()


def setup_logging(level: str = "info") -> None:
    LOG.level = _LEVELS.get(level, logging.INFO)


def log(event: str, level: int = logging.INFO, **fields: Any) -> None:
    LOG.emit(level, event, fields)
