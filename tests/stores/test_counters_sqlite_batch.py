"""SQLite counters' group commit: concurrent writes share transactions yet give exactly the results of running
them one at a time; a failing write fails alone; a cancelled caller breaks nothing; the file lock times out.

The shared suite (test_counters.py) checks the semantics common to every backend; here a spy on the worker
thread records each transaction's size, so that a test knows its writes really went through batches."""

from __future__ import annotations

import asyncio
import random
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from passerelle.stores.base import Bucket, Charge, Counters, Slot
from passerelle.stores.counters_memory import MemoryCounters
from passerelle.stores.counters_sqlite import MAX_BATCH, SQLiteCounters
from passerelle.stores.counters_sqlite_batch import FileLock
from tests.stores.counters_fixtures import FakeClock

HARD, SOFT, LATE = Charge("budget:hard", 5_000), Charge("budget:soft", None), Charge("budget:late", 3_000, ttl_s=60)
REQ, TOK = Bucket("rl:req", 60, 0.5, 1), Bucket("rl:tok", 4_000, 10.0, 0)  # TOK's cost is set per request
CONC, PAIR = Slot("conc:key", 6), Slot("conc:pair", 2, lease_s=30)

Op = tuple[str, tuple[Any, ...]]  # a Counters method and its arguments


@pytest.fixture
async def make(tmp_path: Path) -> AsyncIterator[Callable[[str], SQLiteCounters]]:
    """Opens SQLite counters on a file of its own per name, all on one fake clock; closes them after."""
    clock, opened = FakeClock(), []

    def open_one(name: str) -> SQLiteCounters:
        opened.append(SQLiteCounters(tmp_path / f"{name}.db", clock=clock))
        return opened[-1]

    yield open_one
    for counters in opened:
        await counters.aclose()


def spy_batches(counters: SQLiteCounters) -> list[int]:
    """The size of every transaction the worker thread runs from now on."""
    sizes: list[int] = []
    execute = counters._execute

    def spy(ops: list[Any]) -> None:
        sizes.append(len(ops))
        execute(ops)

    counters._execute = spy  # type: ignore[method-assign]
    return sizes


def workload(seed: int, n: int, failures: bool) -> list[Op]:
    """A reproducible mix of admissions, settlements (of earlier admissions, refused or not), seeds and flags
    over shared counters; with ``failures``, some writes raise: a wrong argument count, a money value SQLite
    cannot store (found by the write-back: the batch is replayed write by write), an int64 overflow."""
    rng, ops = random.Random(seed), list[Op]()
    admitted: list[tuple[str, list[Charge], int, list[Bucket], list[Slot]]] = []
    for i in range(n):
        roll = rng.random()
        if roll < 0.06:
            counter = rng.choice([HARD, SOFT, LATE]).counter
            value, ttl = rng.randrange(0, 2_000), rng.choice([None, 30])
            ops.append(("seed", (counter, value, ttl)))
        elif roll < 0.10:
            flag, ttl = f"alert:{rng.randrange(4)}", rng.randrange(1, 100)
            ops.append(("first_time", (flag, ttl)))
        elif roll < 0.55 or not admitted:
            rid = f"r{i}"
            charges = rng.sample([HARD, SOFT, LATE], rng.randrange(0, 3))
            buckets = [b if b is REQ else Bucket(TOK.counter, TOK.capacity, TOK.refill_per_s, rng.randrange(1, 500))
                       for b in rng.sample([REQ, TOK], rng.randrange(0, 3))]
            slots = rng.sample([CONC, PAIR], rng.randrange(0, 3))
            reserve = rng.randrange(0, 400)
            admitted.append((rid, charges, reserve, buckets, slots))
            ops.append(("admit", admitted[-1]))
        else:
            rid, charges, reserve, buckets, slots = admitted.pop(rng.randrange(len(admitted)))
            actual, costs = rng.randrange(0, 500), [rng.randrange(0, 2 * b.cost + 1) for b in buckets]
            if failures and rng.random() < 0.2:
                costs.append(1)  # one cost too many: ValueError after the charges changed, so they are undone
            ops.append(("settle", (rid, charges, reserve, actual, buckets, costs, slots)))
        if failures and rng.random() < 0.05:
            bad: float = rng.choice([0.5, 2**63])  # a REAL in an INTEGER column; past int64
            ops.append(("admit", (f"bad{i}", [SOFT], bad, [REQ], [CONC])))
    return ops


async def outcome(op: Op, counters: Counters) -> Any:
    method, args = op
    try:
        return await getattr(counters, method)(*args)
    except Exception as exc:
        return type(exc)


async def state(counters: Counters) -> list[Any]:
    """Everything observable: committed charges, and what a probe sees of each bucket and slot."""
    probe = await counters.admit("probe", [], 0, [REQ, TOK], [CONC, PAIR])
    return [await counters.committed([HARD.counter, SOFT.counter, LATE.counter]), probe]


async def test_concurrent_writes_give_exactly_the_results_of_running_them_one_at_a_time(
        make: Callable[[str], SQLiteCounters]) -> None:
    ops = workload(seed=4, n=700, failures=True)
    one_by_one, batched = make("sequential"), make("batched")
    expected = [await outcome(op, one_by_one) for op in ops]
    sizes = spy_batches(batched)
    assert await asyncio.gather(*(outcome(op, batched) for op in ops)) == expected
    assert max(sizes) == MAX_BATCH and sum(sizes) == len(ops)  # full batches, each write run once
    assert await state(batched) == await state(one_by_one)
    # A write that fails changes nothing: without them, the others give the same results and the same state.
    failed = [i for i, e in enumerate(expected) if e in (ValueError, OverflowError, sqlite3.IntegrityError)]
    assert {expected[i] for i in failed} == {ValueError, OverflowError, sqlite3.IntegrityError}
    assert len(failed) < len(ops) // 5
    clean = make("clean")
    assert [await outcome(op, clean) for i, op in enumerate(ops) if i not in failed] == [
        e for i, e in enumerate(expected) if i not in failed]
    assert await state(clean) == await state(one_by_one)


async def test_batched_sqlite_matches_the_in_process_counters(make: Callable[[str], SQLiteCounters]) -> None:
    clock = FakeClock()
    ops = workload(seed=11, n=500, failures=False)
    memory, batched = MemoryCounters(clock=clock), make("batched")
    expected = [await outcome(op, memory) for op in ops]
    assert await asyncio.gather(*(outcome(op, batched) for op in ops)) == expected
    assert await state(batched) == await state(memory)


async def test_300_concurrent_admits_take_the_first_that_fit_in_submission_order(
        make: Callable[[str], SQLiteCounters]) -> None:
    counters = make("counters")
    limit, reserve = 1_000, 7
    await counters.seed(HARD.counter, 0, None)
    sizes = spy_batches(counters)
    results = await asyncio.gather(*(counters.admit(f"r{i}", [Charge(HARD.counter, limit)], reserve, [], [])
                                     for i in range(300)))
    assert [i for i, r in enumerate(results) if r.ok] == list(range(limit // reserve))
    assert {(r.reason, r.denied_by) for r in results if not r.ok} == {("budget", HARD.counter)}
    assert await counters.committed([HARD.counter]) == [limit // reserve * reserve]
    assert len(sizes) < 300


async def test_a_failing_write_fails_only_its_caller(make: Callable[[str], SQLiteCounters]) -> None:
    counters = make("counters")
    await counters.seed(HARD.counter, 100, None)
    sizes = spy_batches(counters)
    results = await asyncio.gather(
        counters.first_time("alert:first", 60),  # runs alone, at once: the writes below queue behind it
        counters.admit("r1", [HARD], 10, [REQ], [CONC]),
        counters.settle("r1", [HARD], 10, 4, [REQ], [1, 1], [CONC]),  # two costs for one bucket
        counters.admit("r2", [HARD], 20, [REQ], [CONC]),
        counters.admit("r3", [SOFT], 5, [], []),  # unseeded: refused, not failed
        counters.seed(SOFT.counter, 2**63, None),  # past int64
        counters.first_time("alert:x", 60),
        # Fails reading the rows of the whole batch: the batch is then run again one write at a time.
        counters.admit("r5", [Charge(("not", "a", "name"), None)], 1, [], []),  # type: ignore[arg-type]
        return_exceptions=True)
    assert sizes == [1, 7]
    assert [type(r).__name__ for r in results] == ["bool", "Admission", "ValueError", "Admission", "Admission",
                                                   "OverflowError", "bool", "ProgrammingError"]
    assert await counters.committed([HARD.counter, SOFT.counter]) == [130, None]  # neither failure wrote
    assert (await counters.admit("r4", [], 0, [REQ], [CONC])).levels[REQ.counter].remaining == 57  # r1, r2, r4
    assert not await counters.first_time("alert:x", 60)


async def test_invalid_values_fail_each_write_even_where_they_would_cancel_out(
        make: Callable[[str], SQLiteCounters]) -> None:
    counters = make("counters")
    await counters.seed(SOFT.counter, 0, None)
    # A NaN capacity makes the tokens and the time to fill NaN, which SQLite stores as NULL: refused.
    nan = Bucket("rl:x", float("nan"), 1.0, 1)  # type: ignore[arg-type]
    results = await asyncio.gather(
        counters.first_time("alert:first", 60),  # runs alone, at once: the writes below queue behind it
        counters.admit("r1", [SOFT], 0.5, [], []),  # type: ignore[arg-type]
        counters.admit("r2", [SOFT], 0.5, [], []),  # type: ignore[arg-type]
        counters.settle("r3", [], 0, 0, [nan], [5], []),
        counters.admit("r4", [], 0, [Bucket("rl:x", 10, 1.0, 1)], []),  # writes the bucket's row again
        return_exceptions=True)
    assert [type(r).__name__ for r in results] == ["bool", "IntegrityError", "IntegrityError", "IntegrityError",
                                                   "Admission"]
    assert await counters.committed([SOFT.counter]) == [0]
    assert (await counters.admit("r5", [], 0, [Bucket("rl:x", 10, 1.0, 1)], [])).levels["rl:x"].remaining == 8


async def loop_turns(n: int) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


async def test_a_cancelled_caller_breaks_no_batch(make: Callable[[str], SQLiteCounters]) -> None:
    counters = make("counters")
    await counters.seed(HARD.counter, 0, None)
    counters._lock.acquire()  # the worker thread waits on it: the next batch stays in flight
    try:
        running = asyncio.create_task(counters.admit("running", [HARD], 1, [], []))
        await loop_turns(3)  # the task queues its write, the next turn hands it to the worker thread
        assert len(counters._running) == 1
        queued = [asyncio.create_task(counters.admit(f"q{i}", [HARD], 10, [], [])) for i in range(4)]
        await loop_turns(3)
        assert len(counters._queue) == 4
        running.cancel()  # its write is on the worker thread already: it happens, unread
        queued[1].cancel()  # still queued: it never runs
    finally:
        counters._lock.release()
    assert [r.ok for r in await asyncio.gather(queued[0], *queued[2:])] == [True, True, True]
    for task in (running, queued[1]):
        with pytest.raises(asyncio.CancelledError):
            await task
    assert await counters.committed([HARD.counter]) == [31]


async def test_close_completes_the_queued_writes_then_refuses_new_ones(make: Callable[[str], SQLiteCounters]) -> None:
    counters = make("counters")
    bucket = Bucket("rl:big", 1_000, 1.0, 1)
    writes = [asyncio.create_task(counters.admit(f"r{i}", [], 0, [bucket], [])) for i in range(200)]
    await asyncio.sleep(0)
    await counters.aclose()
    assert all(w.done() and w.result().ok for w in writes)
    with pytest.raises(RuntimeError):
        await counters.admit("late", [], 0, [bucket], [])


def test_the_file_lock_times_out_and_a_waiter_that_gave_up_lets_go(tmp_path: Path) -> None:
    path = tmp_path / "counters.db.lock"
    holder, waiter, third = FileLock(path), FileLock(path), FileLock(path)
    try:
        holder.acquire(5)
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            waiter.acquire(0.05)  # its helper thread stays blocked on the lock...
        holder.release()  # ...takes it now, finds nobody waiting, and lets go
        third.acquire(5)
        with pytest.raises(sqlite3.OperationalError):
            waiter.acquire(0.05)
        third.release()
        waiter.acquire(5)
        waiter.release()
        holder.acquire(5)
        holder.release()
    finally:
        for lock in (holder, waiter, third):
            lock.close()


async def test_an_uncontended_admission_and_settlement_run_inline_and_are_shared(
        make: Callable[[str], SQLiteCounters], tmp_path: Path) -> None:
    counters = make("shared")
    await counters.seed(HARD.counter, 0, None)  # the first write opens the file, on the worker thread
    sizes = spy_batches(counters)
    for i in range(5):
        admission = await counters.admit(f"r{i}", [HARD], 600, [REQ], [CONC])
        assert admission.ok
        await counters.settle(f"r{i}", [HARD], 600, 100, [REQ], [1], [CONC])
    assert sizes == []  # nothing went through the thread
    other = SQLiteCounters(tmp_path / "shared.db", clock=FakeClock())  # another process would see the same
    try:
        assert await other.committed([HARD.counter]) == [500]
        refused = await other.admit("x", [HARD], 4_600, [], [])
        assert (refused.ok, refused.reason) == (False, "budget")
    finally:
        await other.aclose()


async def test_a_write_that_would_wait_for_the_file_lock_goes_to_the_thread(
        make: Callable[[str], SQLiteCounters], tmp_path: Path) -> None:
    counters = make("locked")
    await counters.seed(HARD.counter, 0, None)
    sizes = spy_batches(counters)
    holder = FileLock(tmp_path / "locked.db.lock")  # another process's transaction
    try:
        holder.acquire(5)
        admission = asyncio.ensure_future(counters.admit("r", [HARD], 600, [], []))
        await asyncio.sleep(0.1)
        assert not admission.done()  # the event loop runs on: the write waits on the thread
        holder.release()
        assert (await admission).ok
    finally:
        holder.close()
    assert sizes == [1]
    assert await counters.committed([HARD.counter]) == [600]
