"""What only the shared-memory counters do: their file layout, a full table, the lock held elsewhere, the sweep."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest

from passerelle.stores.base import Bucket, Charge, Slot
from passerelle.stores.counters_shm import CHARGE, HEADER, RECORD, SharedMemoryCounters, TableFull, _counter_key
from passerelle.stores.counters_sqlite_batch import FileLock
from tests.stores.counters_fixtures import FakeClock

BUDGET = "budget:bud_1:2026-11"


async def test_a_full_table_refuses_and_changes_nothing(tmp_path: Path) -> None:
    counters = SharedMemoryCounters(tmp_path / "c.shm", records=8, holders=2, clock=FakeClock())
    try:
        for n in range(6):
            await counters.seed(f"budget:{n}", 10, 3600)
        charge = Charge("budget:0", 1000)
        # Two records left; three are needed: two buckets, then this process's reservation on the charge.
        buckets = [Bucket(f"rl:{n}", 10, 1.0, 1) for n in range(2)]
        with pytest.raises(TableFull):
            await counters.admit("r1", [charge], 5, buckets, [])
        assert await counters.committed(["budget:0"]) == [10]  # the reservation was not made
        await counters.reclaim()  # a sweep: the buckets' records r1 placed hold nothing and go
        admitted = await counters.admit("r2", [charge], 5, buckets[:1], [])
        assert admitted.ok
        assert [level.remaining for level in admitted.levels.values()] == [9]  # r1 took no token
        assert await counters.committed(["budget:0"]) == [15]
    finally:
        await counters.aclose()


async def test_holders_beyond_the_holder_table_fail_cleanly(tmp_path: Path) -> None:
    counters = SharedMemoryCounters(tmp_path / "c.shm", records=8, holders=2, clock=FakeClock())
    try:
        slot = Slot("conc", limit=10)
        assert (await counters.admit("r1", [], 0, [], [slot])).ok
        assert (await counters.admit("r2", [], 0, [], [slot])).ok
        with pytest.raises(TableFull):
            await counters.admit("r3", [], 0, [], [slot])
        await counters.settle("r1", [], 0, 0, [], [], [slot])
        assert (await counters.admit("r3", [], 0, [], [slot])).ok  # the released holder's record is reused
    finally:
        await counters.aclose()


async def test_a_file_of_another_layout_is_reset(tmp_path: Path) -> None:
    path = tmp_path / "c.shm"
    small = SharedMemoryCounters(path, records=8, holders=2)
    await small.seed(BUDGET, 7, 3600)
    await small.aclose()
    again = SharedMemoryCounters(path, records=8, holders=2)
    assert await again.committed([BUDGET]) == [7]  # same layout: kept
    await again.aclose()
    bigger = SharedMemoryCounters(path, records=16, holders=2)
    try:
        assert await bigger.committed([BUDGET]) == [None]  # another layout: counters restart (re-seeded upstream)
        assert path.stat().st_size == 4096 + (16 + 2) * RECORD.size
        assert path.read_bytes()[:HEADER.size] == HEADER.pack(b"PSLCTR01", 16, 2)
    finally:
        await bigger.aclose()


async def test_an_operation_waits_for_a_lock_held_elsewhere_without_blocking_the_loop(tmp_path: Path) -> None:
    path = tmp_path / "c.shm"
    counters = SharedMemoryCounters(path)
    other = FileLock(path.with_name(path.name + ".lock"))  # another process's hold on the lock
    try:
        await counters.seed(BUDGET, 0, 3600)
        other.acquire(1.0)
        admit = asyncio.ensure_future(counters.admit("r1", [Charge(BUDGET, 100)], 10, [], []))
        ticks = 0
        while ticks < 5:  # the loop keeps running while the admission waits
            await asyncio.sleep(0.01)
            ticks += 1
        assert not admit.done()
        threading.Timer(0.05, other.release).start()
        assert (await asyncio.wait_for(admit, 5)).ok
        assert await counters.committed([BUDGET]) == [10]
    finally:
        other.close()
        await counters.aclose()


async def test_the_sweep_frees_what_expired(tmp_path: Path) -> None:
    clock = FakeClock()
    counters = SharedMemoryCounters(tmp_path / "c.shm", records=16, holders=4, clock=clock)
    try:
        bucket = Bucket("rl:req", capacity=2, refill_per_s=1.0, cost=1)
        await counters.seed("day", 1, 10)
        await counters.seed("total", 1, None)
        assert (await counters.admit("r1", [], 0, [bucket], [Slot("conc", 1, lease_s=10)])).ok
        assert len(counters._main.records()) == 4 and len(counters._holders.records()) == 1
        clock.now += 61
        assert await counters.committed(["day", "total"]) == [None, 1]  # the first operation after the interval
        assert counters._sweeping is not None
        await counters._sweeping  # the sweep ran, on the loop
        kinds = sorted(rec[1] for _, rec in counters._main.records())
        # the lapsed slot keeps its count (recounted by its next admission); the day, the bucket, the holder go
        assert kinds == [b"c", b"s"] and counters._holders.records() == []
        assert (await counters.admit("r2", [], 0, [], [Slot("conc", 1, lease_s=10)])).ok
    finally:
        await counters.aclose()


async def test_a_record_moved_by_another_process_is_found_where_it_now_is(tmp_path: Path) -> None:
    """Each process remembers where it found a counter; another process may delete that record and the counter come
    back elsewhere (here its old place holds another counter): the memory is checked, never trusted."""
    clock = FakeClock()
    mine = SharedMemoryCounters(tmp_path / "c.shm", records=8, holders=2, clock=clock)
    other = SharedMemoryCounters(tmp_path / "c.shm", records=8, holders=2, clock=clock)
    try:
        await mine.seed(BUDGET, 10, 3600)
        assert await mine.committed([BUDGET]) == [10]  # found, and its place remembered
        old = mine._main.find(_counter_key(CHARGE, BUDGET))
        other._main.delete(old)
        intruder = _counter_key(CHARGE, "budget:intruder")
        RECORD.pack_into(other._buf, old, intruder, CHARGE, 99, clock() + 3600, 0.0, 0.0)  # reuses the place
        await other.seed(BUDGET, 20, 3600)  # placed again, now elsewhere
        assert other._main.find(_counter_key(CHARGE, BUDGET)) != old
        assert await mine.committed([BUDGET]) == [20]
        assert (await mine.admit("r1", [Charge(BUDGET, 1000)], 5, [], [])).ok
        assert await other.committed([BUDGET]) == [25]
        assert RECORD.unpack_from(mine._buf, old)[2] == 99  # the intruder is untouched
    finally:
        await mine.aclose()
        await other.aclose()


async def test_a_contended_operation_runs_on_the_loops_thread(tmp_path: Path) -> None:
    """Waiting for another worker's hold costs no thread hop: the operation is tried again from the event loop."""
    path = tmp_path / "c.shm"
    counters = SharedMemoryCounters(path)
    other = FileLock(path.with_name(path.name + ".lock"))
    threads: list[int] = []
    apply = counters._apply

    def recording_apply(op: Any) -> Any:
        threads.append(threading.get_ident())
        return apply(op)

    counters._apply = recording_apply  # type: ignore[method-assign]
    try:
        await counters.seed(BUDGET, 0, 3600)
        other.acquire(1.0)
        threading.Timer(0.02, other.release).start()
        assert (await asyncio.wait_for(counters.admit("r1", [Charge(BUDGET, 100)], 10, [], []), 5)).ok
        assert threads and set(threads) == {threading.get_ident()}
    finally:
        other.close()
        await counters.aclose()
