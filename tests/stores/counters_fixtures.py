"""The four ``Counters`` backends behind one fixture, so one suite checks that callers cannot tell them apart.

Redis runs for real (``PASSERELLE_TEST_REDIS``, default the machine's server) under a unique key
prefix per test, deleted afterwards.  Its ``a`` and ``b`` are two separate connections sharing the
prefix: two gateway instances.  SQLite's ``a`` and ``b`` are two connections to one file in the test's
temporary directory: two worker processes, and so are the shared-memory backend's (two mappings of
one file).  The in-process backend has one instance (``a is b``).
Memory, SQLite and shared memory take a fake clock, so "time passes" is instant and exact there and a real sleep
against Redis.  ``run_workers`` starts real worker processes against one SQLite or shared-memory file.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from passerelle.stores.base import Counters
from passerelle.stores.counters_memory import MemoryCounters
from passerelle.stores.counters_redis import RedisCounters
from passerelle.stores.counters_shm import SharedMemoryCounters
from passerelle.stores.counters_sqlite import SQLiteCounters

REDIS_URL = os.environ.get("PASSERELLE_TEST_REDIS", "redis://127.0.0.1:6379/0")
MAX_ENTRY_BYTES = 64


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Backend:
    name: str
    a: Counters
    b: Counters  # a second instance sharing a's state
    clock: FakeClock | None = None

    async def elapse(self, seconds: float) -> None:
        if self.clock is not None:
            self.clock.now += seconds
        else:
            await asyncio.sleep(seconds)

    async def eventually(self, check: Callable[[], Awaitable[bool]], within: float = 5.0) -> None:
        """Memory, SQLite: the fake clock already moved, so ``check`` holds at once.  Redis: poll real time."""
        if self.clock is not None:
            assert await check()
            return
        deadline = asyncio.get_running_loop().time() + within
        while not await check():
            assert asyncio.get_running_loop().time() < deadline, "condition never held"
            await asyncio.sleep(0.05)


async def delete_prefix(prefix: str) -> None:
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=1000)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture(name="backend", params=["memory", "sqlite", "shm", "redis"])
async def backend_fixture(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    if request.param == "memory":
        clock = FakeClock()
        counters = MemoryCounters(clock=clock, max_cache_entry_bytes=MAX_ENTRY_BYTES)
        yield Backend("memory", counters, counters, clock)
        await counters.aclose()
        return
    if request.param in ("sqlite", "shm"):  # two instances on one file: two worker processes
        clock = FakeClock()
        kind, name = (SQLiteCounters, "counters.db") if request.param == "sqlite" else \
            (SharedMemoryCounters, "counters.shm")
        first, second = (kind(tmp_path / name, max_cache_entry_bytes=MAX_ENTRY_BYTES, clock=clock) for _ in range(2))
        try:
            yield Backend(request.param, first, second, clock)
        finally:
            await first.aclose()
            await second.aclose()
        return
    prefix = f"test:counters:{uuid.uuid4().hex}:"
    a = await RedisCounters.connect(REDIS_URL, prefix, max_cache_entry_bytes=MAX_ENTRY_BYTES)
    b = await RedisCounters.connect(REDIS_URL, prefix, max_cache_entry_bytes=MAX_ENTRY_BYTES)
    try:
        yield Backend("redis", a, b)
    finally:
        await a.aclose()
        await b.aclose()
        await delete_prefix(prefix)


# One worker process: opens the file (or connects to Redis), says "ready", waits for "go" on stdin so that the
# processes start together, fires all its admissions concurrently and prints each one's refusal reason (null:
# admitted).  With "settle", it then settles each admitted one at that actual cost.  With "crash", it then exits at
# once, closing nothing: a killed worker.
WORKER = """
import asyncio, json, os, sys
from pathlib import Path
from passerelle.stores.base import Bucket, Charge
from passerelle.stores.counters_redis import RedisCounters
from passerelle.stores.counters_shm import SharedMemoryCounters
from passerelle.stores.counters_sqlite import SQLiteCounters

async def main(spec):
    if "redis" in spec:
        url, prefix, lease = spec["redis"]
        counters = await RedisCounters.connect(url, prefix, owner_lease_s=lease)
    else:
        kind = SharedMemoryCounters if spec["path"].endswith(".shm") else SQLiteCounters
        counters = kind(Path(spec["path"]))
    await counters.ping()
    print("ready", flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    charges = [Charge(counter, limit) for counter, limit in spec["charges"]]
    buckets = [Bucket(*bucket) for bucket in spec["buckets"]]
    results = await asyncio.gather(*(counters.admit(f"{spec['tag']}{i}", charges, spec["reserve"], buckets, [])
                                     for i in range(spec["n"])))
    if spec.get("settle") is not None:  # the actual cost of each admitted request
        for i, result in enumerate(results):
            if result.ok:
                await counters.settle(f"{spec['tag']}{i}", charges, spec["reserve"], spec["settle"], buckets,
                                      [b.cost for b in buckets], [])
    if spec.get("crash"):
        print(json.dumps([r.reason for r in results]), flush=True)
        os._exit(0)
    await counters.aclose()
    print(json.dumps([r.reason for r in results]), flush=True)

asyncio.run(main(json.loads(sys.argv[1])))
"""
SRC = Path(__file__).resolve().parents[2] / "src"


async def run_workers(specs: list[dict[str, Any]], within: float = 60.0) -> list[list[str | None]]:
    """Runs one worker process per spec against the same file; returns each one's refusal reasons."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    procs = [await asyncio.create_subprocess_exec(sys.executable, "-c", WORKER, json.dumps(spec), env=env,
                                                  stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
             for spec in specs]
    try:
        async with asyncio.timeout(within):
            for proc in procs:
                assert proc.stdout is not None
                assert await proc.stdout.readline() == b"ready\n"
            for proc in procs:
                assert proc.stdin is not None
                proc.stdin.write(b"go\n")
                await proc.stdin.drain()
            outputs = [await proc.communicate() for proc in procs]
        assert [proc.returncode for proc in procs] == [0] * len(procs)
        return [json.loads(out) for out, _ in outputs]
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
