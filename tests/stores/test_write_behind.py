"""The write-behind task shared by the ledger and the audit log: an outage logged once, and a stop that lets
the flush in progress finish."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from passerelle.stores import write_behind
from passerelle.stores.write_behind import FlushLoop


async def test_an_outage_is_logged_once_and_so_is_its_end(monkeypatch: pytest.MonkeyPatch) -> None:
    events: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr(write_behind, "log", lambda event, level, **fields: events.append((event, fields)))
    calls = 0
    recovered = asyncio.Event()

    async def flush() -> None:
        nonlocal calls
        calls += 1
        if calls <= 3:
            raise OSError("database down")
        if calls == 5:
            recovered.set()

    loop = FlushLoop("ledger", flush, 0.005, lambda: 7)
    loop.start()
    await asyncio.wait_for(recovered.wait(), 5)
    await loop.stop()
    assert [event for event, _ in events] == ["ledger_write_failed", "ledger_recovered"]
    assert events[0][1] == {"error": "OSError: database down", "pending": 7}
    assert loop.task is None and not loop.failing


async def test_a_stop_lets_the_flush_in_progress_finish() -> None:
    started = asyncio.Event()
    finished: list[bool] = []

    async def flush() -> None:
        started.set()
        await asyncio.sleep(0.1)  # a commit: cancelled here, it would lose its batch
        finished.append(True)

    loop = FlushLoop("audit", flush, 0.005, lambda: 0)
    loop.start()
    await asyncio.wait_for(started.wait(), 5)
    await loop.stop()
    assert finished == [True]
    started.clear()
    loop.start()  # started again after a stop, it flushes again
    await asyncio.wait_for(started.wait(), 5)
    await loop.stop()
    assert finished == [True, True]


async def test_a_flush_that_hangs_is_cancelled_after_the_grace_period() -> None:
    started = asyncio.Event()
    cancelled: list[bool] = []

    async def flush() -> None:
        started.set()
        try:
            await asyncio.sleep(3600)  # a database that never answers
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    loop = FlushLoop("ledger", flush, 0.005, lambda: 0)
    loop.start()
    await asyncio.wait_for(started.wait(), 5)
    await asyncio.wait_for(loop.stop(grace=0.05), 5)
    assert cancelled == [True] and loop.task is None
