"""A gateway process that dies between admission and settlement: its hard-budget reservations come back.

Real processes: a worker (``run_workers``) admits requests, reserving on a budget, and exits without settling
or closing anything, as a killed worker does.  The shared-memory and SQLite backends tell it is dead by its pid
and start time; Redis by its owner key, which it stops renewing (a lease of 1 s here).
"""

from __future__ import annotations

from typing import Any

import pytest
import redis.asyncio as aioredis

from passerelle.stores.base import Charge
from passerelle.stores.counters_redis import RedisCounters
from tests.stores.counters_fixtures import (
    REDIS_URL,
    Backend,
    backend_fixture,  # noqa: F401  (the fixture "backend")
    run_workers,
)

BUDGET = "budget:bud_1:2026-12-08"
LEASE_S = 1.0  # the Redis worker's owner lease


def _worker(backend: Backend, **spec: Any) -> dict[str, Any]:
    if backend.name == "redis":
        assert isinstance(backend.a, RedisCounters)
        return {**spec, "redis": [REDIS_URL, backend.a.prefix, LEASE_S], "buckets": []}
    return {**spec, "path": str(backend.a.path), "buckets": []}  # type: ignore[attr-defined]


# The backends several processes share (in-process counters die with their process, reservations included).
shared = pytest.mark.parametrize("backend", ["sqlite", "shm", "redis"], indirect=True)


@shared
async def test_a_dead_workers_reservations_come_back_and_the_live_ones_stay(backend: Backend) -> None:
    hard = Charge(BUDGET, limit_pico=1000)
    await backend.a.seed(BUDGET, 0, None)
    assert (await backend.a.admit("live", [hard], 50, [], [])).ok  # this process's, in flight
    reasons = await run_workers([_worker(backend, tag="dead", charges=[[BUDGET, 1000]], reserve=100, n=3,
                                         crash=True)])
    assert reasons == [[None, None, None]]
    assert await backend.b.committed([BUDGET]) == [350]
    given: list[int] = []

    async def given_back() -> bool:
        given.append(await backend.b.reclaim())
        return await backend.b.committed([BUDGET]) == [50]

    await backend.eventually(given_back, within=LEASE_S * 5)
    assert sum(given) == 300  # pico-USD: the dead worker's three reservations, not the live one
    assert await backend.a.reclaim() == 0  # once
    assert await backend.a.settle("live", [hard], 50, 20, [], [], []) == []
    assert await backend.b.committed([BUDGET]) == [20]


@shared
async def test_what_a_worker_settled_before_it_died_is_not_given_back(backend: Backend) -> None:
    await backend.a.seed(BUDGET, 0, None)
    reasons = await run_workers([_worker(backend, tag="done", charges=[[BUDGET, 1000]], reserve=100, n=3, settle=7,
                                         crash=True)])
    assert reasons == [[None, None, None]]
    assert await backend.b.committed([BUDGET]) == [21]
    await backend.elapse(LEASE_S * 2)  # Redis: the worker's owner key lapses
    assert await backend.b.reclaim() == 0
    assert await backend.a.committed([BUDGET]) == [21]


@pytest.mark.parametrize("backend", ["redis"], indirect=True)
async def test_a_reservation_given_back_while_its_request_ran_settles_its_actual_cost_alone(
        backend: Backend) -> None:
    """Redis only: an instance cut off from Redis longer than its lease is taken for dead (shared memory and
    SQLite see the process itself, never taken for dead while it runs).  What it settles afterwards must not
    take the reservation off twice."""
    a = backend.a
    assert isinstance(a, RedisCounters)
    hard = Charge(BUDGET, limit_pico=1000)
    await a.seed(BUDGET, 0, None)
    assert (await a.admit("r1", [hard], 100, [], [])).ok
    lapsed = a.owner
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        await client.delete(f"{a.prefix}o:{lapsed}")  # the lease ran out while r1 streamed
    finally:
        await client.aclose()
    assert await backend.b.reclaim() == 100
    assert await a.committed([BUDGET]) == [0]
    assert await a.settle("r1", [hard], 100, 30, [], [], []) == []
    assert await a.committed([BUDGET]) == [30]  # not 30 - 100
    # The lapsed owner is never reserved under again: the next admission takes a new one, kept alive.
    assert (await a.admit("r2", [hard], 100, [], [])).ok
    assert a.owner not in ("", lapsed)
    assert await backend.b.reclaim() == 0
    assert await a.committed([BUDGET]) == [130]
    await a.settle("r2", [hard], 100, 10, [], [], [])
    assert await a.committed([BUDGET]) == [40]
