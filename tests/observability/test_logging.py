from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time

import pytest

from passerelle.observability import logging as json_logging
from passerelle.observability.logging import JsonLog


async def test_lines_are_batched_and_written_off_the_request_path() -> None:
    read_fd, write_fd = os.pipe()
    log = JsonLog(fd=write_fd)
    log.emit(logging.INFO, "request", {"request_id": "r1", "status": 200})
    log.emit(logging.DEBUG, "hidden", {})
    assert os.get_blocking(read_fd)
    os.set_blocking(read_fd, False)
    try:
        os.read(read_fd, 100)
        raise AssertionError("written synchronously")
    except BlockingIOError:
        pass  # nothing yet: the writer task runs later
    await asyncio.sleep(json_logging.FLUSH_INTERVAL * 3)
    lines = os.read(read_fd, 10_000).decode().splitlines()
    await log.aclose()
    os.close(read_fd)
    os.close(write_fd)
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert entry["event"] == "request" and entry["request_id"] == "r1" and entry["level"] == "info"
    assert entry["ts"].endswith("Z")


def test_without_event_loop_writes_at_once() -> None:
    read_fd, write_fd = os.pipe()
    log = JsonLog(fd=write_fd)
    log.emit(logging.WARNING, "config", {"detail": 1})
    assert json.loads(os.read(read_fd, 1000))["level"] == "warning"
    os.close(read_fd)
    os.close(write_fd)


async def test_overflow_drops_and_counts() -> None:
    read_fd, write_fd = os.pipe()
    log = JsonLog(fd=write_fd)
    json_logging.MAX_BUFFERED, saved = 3, json_logging.MAX_BUFFERED
    try:
        for i in range(5):
            log.emit(logging.INFO, "e", {"i": i})
        await log.aclose()
    finally:
        json_logging.MAX_BUFFERED = saved
    lines = [json.loads(x) for x in os.read(read_fd, 10_000).decode().splitlines()]
    os.close(read_fd)
    os.close(write_fd)
    assert [x.get("i") for x in lines[:3]] == [0, 1, 2]
    assert lines[3] == {"event": "log_lines_dropped", "count": 2}


async def test_closing_while_a_batch_is_written_keeps_the_order(monkeypatch: pytest.MonkeyPatch) -> None:
    # The writer thread cannot be stopped: the lines flushed at close must come after the batch it writes.
    written: list[bytes] = []
    writing = threading.Event()

    def slow_write(fd: int, data: bytes) -> None:
        if b'"first"' in data:  # the batch the writer thread has: slow
            writing.set()
            time.sleep(0.2)
        written.append(data)

    monkeypatch.setattr(json_logging, "_write_all", slow_write)
    log = JsonLog(fd=-1)
    log.emit(logging.INFO, "first", {})
    assert await asyncio.to_thread(writing.wait, 5)
    log.emit(logging.INFO, "second", {})
    await log.aclose()
    assert [json.loads(chunk)["event"] for chunk in written] == ["first", "second"]
