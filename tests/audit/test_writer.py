"""``AuditLog``: write-behind with group commit, bounded queue with counted shedding, a database
that is briefly locked, invalid events, and the disabled log."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
import time
from pathlib import Path

import msgspec
import pytest

from passerelle.audit import AuditLog, open_audit
from passerelle.audit import writer as writer_module
from passerelle.audit.chain import GENESIS, averify
from passerelle.audit.records import AuditEvent, AuditRecord, Unsealed
from passerelle.audit.sqlite import SQLiteAuditStore
from passerelle.config import Config
from passerelle.config.schema import AuditConfig
from tests.audit.conftest import event


async def stored(store: SQLiteAuditStore) -> list[AuditRecord]:
    async with store.snapshot() as view:
        assert (await averify(view.records(), GENESIS)).ok
        return [r async for r in view.records()]


async def test_background_commits_and_graceful_stop(tmp_path: Path) -> None:
    store = SQLiteAuditStore(tmp_path / "audit.db")
    log = AuditLog(store, AuditConfig(flush_interval=0.05, batch=7))
    await log.start()
    for i in range(1, 31):
        log.append(event(i))
    deadline = time.monotonic() + 10
    while (await store.head()).seq < 30:  # the background task committed them, 7 at a time
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    for i in range(31, 41):
        log.append(event(i))
    await log.aclose()  # flushes what is queued, then closes the store
    reopened = SQLiteAuditStore(tmp_path / "audit.db")
    try:
        assert [r.request_id for r in await stored(reopened)] == [f"req-{i:05d}" for i in range(1, 41)]
    finally:
        await reopened.aclose()


async def test_full_queue_sheds_the_oldest_and_counts(tmp_path: Path) -> None:
    store = SQLiteAuditStore(tmp_path / "audit.db")
    log = AuditLog(store, AuditConfig(queue=5))
    for i in range(1, 9):
        log.append(event(i))
    assert log.dropped == 3
    await log.flush()
    assert [r.request_id for r in await stored(store)] == [f"req-{i:05d}" for i in range(4, 9)]
    await log.aclose()


async def test_locked_database_keeps_the_batch_in_order(tmp_path: Path) -> None:
    store = SQLiteAuditStore(tmp_path / "audit.db", busy_timeout_ms=50)
    log = AuditLog(store, AuditConfig(batch=3))
    for i in range(1, 6):
        log.append(event(i))
    other = sqlite3.connect(tmp_path / "audit.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            await log.flush()
        log.append(event(6))
    finally:
        other.execute("ROLLBACK")
        other.close()
    await log.flush()
    assert [r.seq for r in await stored(store)] == [1, 2, 3, 4, 5, 6]
    assert [r.request_id for r in await stored(store)] == [f"req-{i:05d}" for i in range(1, 7)]
    await log.aclose()


async def test_invalid_events_are_counted_not_raised(tmp_path: Path) -> None:
    store = SQLiteAuditStore(tmp_path / "audit.db")
    log = AuditLog(store, AuditConfig())
    log.append(event(1))
    log.append(event(2, status="200"))
    log.append(event(3))
    await log.flush()
    assert log.invalid == 1 and [r.request_id for r in await stored(store)] == ["req-00001", "req-00003"]
    await log.aclose()


async def test_store_content_follows_the_config(tmp_path: Path) -> None:
    config = msgspec.convert({"audit": {"store_content": True}}, Config)
    log = await open_audit(config, tmp_path)
    assert isinstance(log.store, SQLiteAuditStore) and log.store.path == tmp_path / "audit.db"
    log.append(event(1, content="[EMAIL] wrote"))
    log.append(event(2))
    await log.aclose()
    reopened = SQLiteAuditStore(tmp_path / "audit.db")
    try:
        assert [r.content for r in await stored(reopened)] == ["[EMAIL] wrote", None]
    finally:
        await reopened.aclose()


async def test_disabled_log_discards(tmp_path: Path) -> None:
    log = await open_audit(msgspec.convert({"audit": {"enabled": False}}, Config), tmp_path)
    await log.start()
    log.append(event(1))
    await log.aclose()
    assert log.store is None and not (tmp_path / "audit.db").exists()


async def test_a_flush_commits_what_was_queued_when_it_began(tmp_path: Path) -> None:
    store = SQLiteAuditStore(tmp_path / "audit.db")
    log = AuditLog(store, AuditConfig(batch=2))
    for i in range(1, 6):
        log.append(event(i))
    committed: list[int] = []
    append = store.append

    async def slow_append(batch: list[AuditRecord]) -> None:
        await append(batch)
        committed.append(len(batch))
        log.append(event(100 + len(committed)))  # traffic keeps coming while it commits

    store.append = slow_append  # type: ignore[method-assign]
    await log.flush()
    # the five queued at the start, two by two, and one of those that came meanwhile (it filled the last
    # batch); the rest wait for the next flush instead of being chased one small transaction at a time
    assert committed == [2, 2, 2] and log.queued == 2
    await log.aclose()


async def cancel_writer(log: AuditLog) -> None:
    """What an event loop's teardown does to every task left: cancel the writer from outside."""
    writer = log._writer.task
    assert writer is not None
    writer.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await writer


async def test_a_commit_that_completes_while_the_writer_is_cancelled_is_not_written_twice(tmp_path: Path) -> None:
    # A commit runs in a worker thread that a cancellation cannot stop: if it completes while its caller is
    # being cancelled, its batch must not be appended again by the flush that follows.
    store = SQLiteAuditStore(tmp_path / "audit.db")
    log = AuditLog(store, AuditConfig(flush_interval=0.01))
    append = store.append
    in_commit = asyncio.Event()

    async def commit_in_a_thread(batch: list[AuditRecord]) -> list[AuditRecord]:
        async def commit() -> list[AuditRecord]:
            in_commit.set()
            await asyncio.sleep(0.2)  # the thread's COMMIT, which the caller's cancellation does not stop
            return await append(batch)

        return await asyncio.shield(asyncio.ensure_future(commit()))

    store.append = commit_in_a_thread  # type: ignore[method-assign,assignment]
    await log.start()
    for i in range(1, 4):
        log.append(event(i))
    await asyncio.wait_for(in_commit.wait(), 5)
    await cancel_writer(log)  # in the middle of its commit
    await log.aclose()  # flushes what is left
    reopened = SQLiteAuditStore(tmp_path / "audit.db")
    try:
        assert [r.request_id for r in await stored(reopened)] == [f"req-{i:05d}" for i in range(1, 4)]
    finally:
        await reopened.aclose()


@pytest.mark.parametrize("stop", ["aclose", "cancel"])
async def test_a_stop_while_events_are_prepared_loses_and_reorders_nothing(tmp_path: Path, stop: str) -> None:
    # Events are validated in a worker thread before their commit, and a stop (aclose, or a cancellation from
    # outside) can come while that thread runs.  Flushing again beside it once ran a second thread over the
    # rest of the queue: the events came out of order, and the commit that cleared the ready list dropped what
    # the first thread added after it (an event lost on SIGTERM in tests/audit/test_durability.py).
    store = SQLiteAuditStore(tmp_path / "audit.db")
    log = AuditLog(store, AuditConfig(flush_interval=0.01, batch=1000))
    preparing, release = threading.Event(), threading.Event()
    real = writer_module.unsealed

    def held_unsealed(event: AuditEvent, store_content: bool) -> Unsealed:
        if event.request_id == "req-00050":  # the thread is held in the middle of the queue
            preparing.set()
            release.wait(5)
        return real(event, store_content)

    writer_module.unsealed = held_unsealed  # type: ignore[assignment]
    try:
        for i in range(1, 101):
            log.append(event(i))
        await log.start()
        assert await asyncio.to_thread(preparing.wait, 5)
        asyncio.get_running_loop().call_later(0.2, release.set)  # after the stop has begun
        if stop == "cancel":
            await cancel_writer(log)
        await log.aclose()
    finally:
        release.set()
        writer_module.unsealed = real
    reopened = SQLiteAuditStore(tmp_path / "audit.db")
    try:
        assert [r.request_id for r in await stored(reopened)] == [f"req-{i:05d}" for i in range(1, 101)]
    finally:
        await reopened.aclose()
