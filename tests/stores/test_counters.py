"""One suite for the four ``Counters`` backends: budgets, rate limits, concurrency, flags, response cache."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from contextlib import closing
from pathlib import Path

import pytest

from passerelle.stores.base import Bucket, Charge, Counters, Slot
from passerelle.stores.counters_memory import MemoryCounters
from passerelle.stores.counters_shm import SharedMemoryCounters
from passerelle.stores.counters_sqlite import SQLiteCounters
from tests.stores.counters_fixtures import (
    MAX_ENTRY_BYTES,
    Backend,
    FakeClock,
    backend_fixture,  # noqa: F401  (the fixture "backend")
    run_workers,
)

BUDGET = "budget:bud_1:2026-11-27"


async def admit_ok(counters: Counters, rid: str, charges: Sequence[Charge] = (), reserve: int = 0,
                   buckets: Sequence[Bucket] = (), slots: Sequence[Slot] = ()) -> bool:
    return (await counters.admit(rid, charges, reserve, buckets, slots)).ok


# budgets


async def test_reserve_within_limit_then_refuse_at_limit_changing_nothing(backend: Backend) -> None:
    hard = Charge(BUDGET, limit_pico=100)
    await backend.a.seed(BUDGET, 0, None)
    assert await admit_ok(backend.a, "r1", [hard], 60)
    refused = await backend.b.admit("r2", [hard], 50, [], [])
    assert (refused.ok, refused.reason, refused.denied_by) == (False, "budget", BUDGET)
    assert await backend.a.committed([BUDGET]) == [60]
    assert await admit_ok(backend.b, "r3", [hard], 40)  # exactly up to the limit is allowed
    assert await backend.a.committed([BUDGET]) == [100]


async def test_settle_replaces_the_reservation_by_the_actual_cost(backend: Backend) -> None:
    hard = Charge(BUDGET, limit_pico=1000)
    await backend.a.seed(BUDGET, 100, None)
    assert await admit_ok(backend.a, "r1", [hard], 600)
    assert await backend.b.settle("r1", [hard], 600, 250, [], [], []) == []
    assert await backend.a.committed([BUDGET]) == [350]


async def test_hard_limit_holds_under_200_concurrent_admits_from_two_instances(backend: Backend) -> None:
    hard = Charge(BUDGET, limit_pico=1000)
    reserve = 19
    await backend.a.seed(BUDGET, 0, 3600)
    results = await asyncio.gather(*(
        (backend.a if i % 2 else backend.b).admit(f"r{i}", [hard], reserve, [], []) for i in range(200)))
    admitted = [i for i, r in enumerate(results) if r.ok]
    assert len(admitted) == 1000 // reserve
    assert all(r.reason == "budget" and r.denied_by == BUDGET for r in results if not r.ok)
    assert await backend.a.committed([BUDGET]) == [len(admitted) * reserve]
    # Settling them concurrently lands exactly on the actual spend.
    await asyncio.gather(*(
        (backend.b if i % 2 else backend.a).settle(f"r{i}", [hard], reserve, 7, [], [], []) for i in admitted))
    assert await backend.b.committed([BUDGET]) == [len(admitted) * 7]


async def test_money_beyond_float_precision_is_compared_exactly(backend: Backend) -> None:
    limit = 10**18 + 7  # a million dollars in pico-USD: far past 2**53
    hard = Charge(BUDGET, limit_pico=limit)
    await backend.a.seed(BUDGET, 10**18, None)
    assert await admit_ok(backend.a, "r1", [hard], 7)
    assert not await admit_ok(backend.b, "r2", [hard], 1)
    assert await backend.a.committed([BUDGET]) == [limit]
    assert await backend.a.settle("r1", [hard], 7, 8, [], [], []) == [BUDGET]  # one pico over: crossed
    assert await backend.a.committed([BUDGET]) == [limit + 1]


async def test_unseeded_counters_are_all_listed_then_seeded_and_admitted(backend: Backend) -> None:
    charges = [Charge("budget:key", 100), Charge("budget:team", 100), Charge("budget:tenant", None)]
    bucket = Bucket("rl:req", capacity=5, refill_per_s=0.001, cost=1)
    await backend.a.seed("budget:team", 10, None)
    refused = await backend.a.admit("r1", charges, 20, [bucket], [Slot("conc", 1)])
    assert (refused.ok, refused.reason) == (False, "unseeded")
    assert refused.missing == ["budget:key", "budget:tenant"]
    assert refused.levels["rl:req"].remaining == 5
    assert await backend.a.committed(["budget:key", "budget:team", "budget:tenant"]) == [None, 10, None]
    await backend.b.seed("budget:key", 0, 3600)
    await backend.b.seed("budget:tenant", 0, None)
    admission = await backend.a.admit("r1", charges, 20, [bucket], [Slot("conc", 1)])
    assert admission.ok
    assert admission.levels["rl:req"].remaining == 4
    assert await backend.b.committed(["budget:key", "budget:team", "budget:tenant"]) == [20, 30, 20]


async def test_seed_does_not_overwrite(backend: Backend) -> None:
    await backend.a.seed(BUDGET, 5, None)
    await backend.b.seed(BUDGET, 10, 60)
    assert await backend.a.committed([BUDGET, "absent"]) == [5, None]
    assert await backend.a.committed([]) == []


async def test_one_full_charge_refuses_everything_and_changes_nothing(backend: Backend) -> None:
    charges = [Charge("budget:key", 100), Charge("budget:team", 50), Charge("budget:soft", None)]
    for charge, value in zip(charges, [0, 45, 7], strict=True):
        await backend.a.seed(charge.counter, value, None)
    bucket = Bucket("rl:req", capacity=5, refill_per_s=0.001, cost=1)
    slot = Slot("conc", limit=1)
    refused = await backend.b.admit("r1", charges, 10, [bucket], [slot])
    assert (refused.ok, refused.reason, refused.denied_by) == (False, "budget", "budget:team")
    assert refused.levels["rl:req"].remaining == 5
    assert await backend.a.committed([c.counter for c in charges]) == [0, 45, 7]
    # Neither the bucket nor the slot was taken: a request that fits still gets both, once.
    assert await admit_ok(backend.a, "r2", charges, 5, [bucket], [slot])
    assert await backend.a.committed([c.counter for c in charges]) == [5, 50, 12]
    assert not await admit_ok(backend.a, "r3", [], 0, [], [slot])


async def test_soft_budget_never_refuses_and_its_crossing_is_reported_once(backend: Backend) -> None:
    soft_admit, soft_settle = Charge(BUDGET, None), Charge(BUDGET, limit_pico=100)
    await backend.a.seed(BUDGET, 0, None)
    reports = []
    for i in range(6):
        counters = backend.a if i % 2 else backend.b
        assert await admit_ok(counters, f"r{i}", [soft_admit], 40)
        reports.append(await counters.settle(f"r{i}", [soft_settle], 40, 30, [], [], []))
    assert reports == [[], [], [], [BUDGET], [], []]  # 90 -> 120 crosses 100
    assert await backend.a.committed([BUDGET]) == [180]


async def test_counters_expire_with_their_period_and_settle_does_not_revive_them(backend: Backend) -> None:
    charge = Charge(BUDGET, limit_pico=100, ttl_s=1)
    await backend.a.seed(BUDGET, 0, 1)
    assert await admit_ok(backend.a, "r1", [charge], 10)
    await backend.elapse(1.0)
    await backend.eventually(lambda: _absent(backend.b, BUDGET))
    assert await backend.b.settle("r1", [charge], 10, 5, [], [], []) == []
    assert await backend.a.committed([BUDGET]) == [None]


async def _absent(counters: Counters, counter: str) -> bool:
    return await counters.committed([counter]) == [None]


# rate limits (token buckets)


async def test_bucket_allows_its_capacity_as_a_burst_then_refuses_with_retry_after(backend: Backend) -> None:
    bucket = Bucket("rl:req", capacity=5, refill_per_s=1.0, cost=1)
    for i in range(5):
        admission = await (backend.a if i % 2 else backend.b).admit(f"r{i}", [], 0, [bucket], [])
        assert admission.ok
        level = admission.levels["rl:req"]
        assert (level.limit, level.remaining) == (5, 4 - i)
        assert level.reset_s > 0
    refused = await backend.a.admit("r5", [], 0, [bucket], [])
    assert (refused.ok, refused.reason, refused.denied_by) == (False, "rate", "rl:req")
    assert refused.retry_after is not None and 0 < refused.retry_after <= 1.0
    assert refused.levels["rl:req"].remaining == 0


async def test_a_cost_above_capacity_never_fits(backend: Backend) -> None:
    refused = await backend.a.admit("r1", [], 0, [Bucket("rl:tok", capacity=100, refill_per_s=10, cost=101)], [])
    assert (refused.ok, refused.reason, refused.retry_after) == (False, "rate", None)
    assert refused.levels["rl:tok"].remaining == 100


async def test_bucket_refills_as_time_passes(backend: Backend) -> None:
    bucket = Bucket("rl:req", capacity=2, refill_per_s=20.0, cost=2)
    assert await admit_ok(backend.a, "r1", buckets=[bucket])
    assert not await admit_ok(backend.b, "r2", buckets=[bucket])
    await backend.elapse(0.1)
    await backend.eventually(lambda: admit_ok(backend.b, "r2", buckets=[bucket]))


async def test_settle_gives_back_unused_tokens_and_takes_the_excess(backend: Backend) -> None:
    bucket = Bucket("rl:tok", capacity=100, refill_per_s=0.001, cost=60)
    assert (await backend.a.admit("r1", [], 0, [bucket], [])).levels["rl:tok"].remaining == 40
    await backend.b.settle("r1", [], 0, 0, [bucket], [10], [])  # used 10 of 60: 50 come back
    big = Bucket("rl:tok", capacity=100, refill_per_s=0.001, cost=90)
    assert (await backend.a.admit("r2", [], 0, [big], [])).levels["rl:tok"].remaining == 0
    await backend.a.settle("r2", [], 0, 0, [big], [130], [])  # used 40 more than it took: now -40
    refused = await backend.b.admit("r3", [], 0, [Bucket("rl:tok", 100, 0.001, 1)], [])
    assert (refused.ok, refused.reason, refused.levels["rl:tok"].remaining) == (False, "rate", 0)
    assert refused.retry_after is not None and refused.retry_after > 40 / 0.001


async def test_a_lowered_capacity_clamps_the_bucket(backend: Backend) -> None:
    assert await admit_ok(backend.a, "r1", buckets=[Bucket("rl:req", capacity=10, refill_per_s=0.001, cost=1)])
    admission = await backend.b.admit("r2", [], 0, [Bucket("rl:req", capacity=3, refill_per_s=0.001, cost=1)], [])
    assert admission.ok
    assert (admission.levels["rl:req"].limit, admission.levels["rl:req"].remaining) == (3, 2)


async def test_two_instances_racing_on_one_bucket_admit_exactly_its_capacity(backend: Backend) -> None:
    bucket = Bucket("rl:req", capacity=30, refill_per_s=0.0001, cost=1)
    results = await asyncio.gather(*(
        (backend.a if i % 2 else backend.b).admit(f"r{i}", [], 0, [bucket], []) for i in range(200)))
    assert sum(r.ok for r in results) == 30
    assert all(r.reason == "rate" for r in results if not r.ok)


# concurrency (slots)


async def test_slot_limit_holds_across_instances_and_settle_releases(backend: Backend) -> None:
    slot = Slot("conc:key", limit=3)
    assert await admit_ok(backend.a, "r1", slots=[slot])
    assert await admit_ok(backend.a, "r2", slots=[slot])
    assert await admit_ok(backend.b, "r3", slots=[slot])
    refused = await backend.b.admit("r4", [], 0, [], [slot])
    assert (refused.ok, refused.reason, refused.denied_by) == (False, "concurrency", "conc:key")
    assert await backend.b.settle("r1", [], 0, 0, [], [], [slot]) == []
    assert await admit_ok(backend.a, "r4", slots=[slot])
    assert not await admit_ok(backend.b, "r5", slots=[slot])


async def test_an_expired_lease_frees_its_slot(backend: Backend) -> None:
    slot = Slot("conc:key", limit=1, lease_s=1)
    assert await admit_ok(backend.a, "crashed", slots=[slot])
    assert not await admit_ok(backend.b, "r2", slots=[slot])
    await backend.elapse(1.0)
    await backend.eventually(lambda: admit_ok(backend.b, "r2", slots=[slot]))


# alert flags and the response cache


async def test_first_time_is_true_once_per_ttl(backend: Backend) -> None:
    assert await backend.a.first_time("alert:bud_1", 1)
    assert not await backend.b.first_time("alert:bud_1", 1)
    assert await backend.b.first_time("alert:bud_2", 1)
    await backend.elapse(1.0)
    await backend.eventually(lambda: backend.b.first_time("alert:bud_1", 1))


async def test_cache_set_get_and_expiry(backend: Backend) -> None:
    assert await backend.a.cache_get("k1") is None
    await backend.a.cache_set("k1", b"answer", 60)
    await backend.a.cache_set("k2", b"short-lived", 0.2)
    assert await backend.b.cache_get("k1") == b"answer"
    await backend.elapse(0.2)
    await backend.eventually(lambda: _cache_miss(backend.b, "k2"))
    assert await backend.b.cache_get("k1") == b"answer"


async def _cache_miss(counters: Counters, key: str) -> bool:
    return await counters.cache_get(key) is None


async def test_cache_skips_oversize_entries(backend: Backend) -> None:
    await backend.a.cache_set("fits", b"x" * MAX_ENTRY_BYTES, 60)
    await backend.a.cache_set("big", b"x" * (MAX_ENTRY_BYTES + 1), 60)
    assert await backend.b.cache_get("fits") == b"x" * MAX_ENTRY_BYTES
    assert await backend.b.cache_get("big") is None


async def test_an_admission_with_nothing_to_check_is_admitted(backend: Backend) -> None:
    admission = await backend.a.admit("r1", [], 10, [], [])
    assert admission.ok and admission.levels == {}
    assert await backend.a.settle("r1", [], 10, 3, [], [], []) == []
    await backend.a.ping()


# in-process only


async def test_memory_cache_evicts_the_least_recently_used() -> None:
    counters = MemoryCounters(max_cache_entries=3, clock=FakeClock())
    for key in "abc":
        await counters.cache_set(key, key.encode(), 60)
    assert await counters.cache_get("a") == b"a"
    await counters.cache_set("d", b"d", 60)
    assert [await counters.cache_get(k) for k in "abcd"] == [b"a", None, b"c", b"d"]


async def test_memory_sweep_forgets_what_expired() -> None:
    clock = FakeClock()
    counters = MemoryCounters(clock=clock)
    bucket = Bucket("rl:req", capacity=2, refill_per_s=1.0, cost=1)
    await counters.seed("day", 1, 10)
    await counters.seed("total", 1, None)
    assert await admit_ok(counters, "r1", buckets=[bucket], slots=[Slot("conc", 1, lease_s=10)])
    await counters.first_time("flag", 10)
    await counters.cache_set("k", b"v", 10)
    clock.now += 61
    assert await counters.committed(["total"]) == [1]  # the first call after the interval sweeps
    assert counters._charges.keys() == {"total"}
    assert not (counters._buckets or counters._slots or counters._flags or counters._cache)


# SQLite only


async def test_sqlite_cache_evicts_the_oldest_inserted(tmp_path: Path) -> None:
    counters = SQLiteCounters(tmp_path / "counters.db", max_cache_entries=3, clock=FakeClock())
    try:
        for key in "abc":
            await counters.cache_set(key, key.encode(), 60)
        assert await counters.cache_get("a") == b"a"  # a hit does not refresh an entry...
        await counters.cache_set("b", b"b2", 60)  # ...setting it again does
        await counters.cache_set("d", b"d", 60)
        assert [await counters.cache_get(k) for k in "abcd"] == [None, b"b2", b"c", b"d"]
    finally:
        await counters.aclose()


async def test_sqlite_sweep_forgets_what_expired(tmp_path: Path) -> None:
    clock = FakeClock()
    counters = SQLiteCounters(tmp_path / "counters.db", clock=clock)
    try:
        bucket = Bucket("rl:req", capacity=2, refill_per_s=1.0, cost=1)
        await counters.seed("day", 1, 10)
        await counters.seed("total", 1, None)
        assert await admit_ok(counters, "r1", buckets=[bucket], slots=[Slot("conc", 1, lease_s=10)])
        await counters.first_time("flag", 10)
        await counters.cache_set("k", b"v", 10)
        clock.now += 61
        assert await counters.first_time("other", 10)  # the first write after the interval sweeps
        with closing(sqlite3.connect(tmp_path / "counters.db")) as db:
            rows = {table: db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                    for table in ("charges", "buckets", "slots", "flags", "cache")}
        assert rows == {"charges": 1, "buckets": 0, "slots": 0, "flags": 1, "cache": 0}
        assert await counters.committed(["day", "total"]) == [None, 1]
    finally:
        await counters.aclose()


SHARED_FILES = pytest.mark.parametrize("name", ["counters.db", "counters.shm"])


def _shared(path: Path) -> Counters:
    return SharedMemoryCounters(path) if path.suffix == ".shm" else SQLiteCounters(path)


@SHARED_FILES
async def test_two_processes_sharing_a_file_never_pass_a_hard_budget(tmp_path: Path, name: str) -> None:
    path, limit, reserve = tmp_path / name, 1000, 19
    counters = _shared(path)
    try:
        await counters.seed(BUDGET, 0, 3600)
        reasons = await run_workers([{"path": str(path), "tag": tag, "charges": [[BUDGET, limit]],
                                      "reserve": reserve, "buckets": [], "n": 100} for tag in "ab"])
        every = reasons[0] + reasons[1]
        assert every.count(None) == limit // reserve
        assert set(every) == {None, "budget"}
        assert await counters.committed([BUDGET]) == [every.count(None) * reserve]
    finally:
        await counters.aclose()


@SHARED_FILES
async def test_two_processes_racing_on_one_bucket_admit_exactly_its_capacity(tmp_path: Path, name: str) -> None:
    # Both processes create the fresh file together: its layout (SQLite: schema and WAL mode) must survive the race.
    bucket = ["rl:req", 30, 0.0001, 1]
    reasons = await run_workers([{"path": str(tmp_path / name), "tag": tag, "charges": [], "reserve": 0,
                                  "buckets": [bucket], "n": 100} for tag in "ab"])
    every = reasons[0] + reasons[1]
    assert every.count(None) == 30
    assert set(every) == {None, "rate"}
