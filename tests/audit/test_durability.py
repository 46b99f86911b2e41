"""The durability guarantee, with real processes: several appenders share one chain (one SQLite file,
or PostgreSQL); SIGKILL under load loses at most the last flush interval, never a half-written or
mis-chained record; SIGTERM loses nothing."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from passerelle.audit.chain import GENESIS, averify
from passerelle.audit.sql_store import SQLAuditStore
from passerelle.audit.sqlite import SQLiteAuditStore
from tests.audit.conftest import open_pg
from tests.support.backends import POSTGRES_DSN, REDIS_URL, drop_schema

ROOT = Path(__file__).resolve().parents[2]


def spawn(config: Path, data: Path, name: str, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    return subprocess.Popen([sys.executable, "-m", "tests.audit.appender", str(config), str(data), name],
                            cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)


def appended(log: Path) -> int:
    lines = [line for line in log.read_text().splitlines() if line.startswith("appended ")]
    return int(lines[-1].split()[1]) if lines else 0


@pytest.fixture(params=["sqlite", "postgres"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[tuple[Path, SQLAuditStore]]:
    """A config file for the appenders and the store the test reads back."""
    config = tmp_path / "passerelle.yaml"
    audit = "audit: {flush_interval: 0.1}\n"
    if request.param == "sqlite":
        config.write_text(audit)
        yield config, SQLiteAuditStore(tmp_path / "data" / "audit.db")
        return
    schema = f"test_{uuid.uuid4().hex}"
    config.write_text(audit + f"store: {{backend: postgres, postgres_dsn: '{POSTGRES_DSN}', postgres_schema: "
                              f"{schema}, redis_url: '{REDIS_URL}'}}\n")
    store = await open_pg(schema)
    try:
        yield config, store
    finally:
        await store.aclose()
        await drop_schema(schema)


async def committed(store: SQLAuditStore) -> dict[str, list[int]]:
    """Each appender's committed event numbers, after checking the whole chain."""
    async with store.snapshot() as view:
        verdict = await averify(view.records(), GENESIS)
        assert verdict.ok, verdict.broken  # gapless from seq 1, every link and hash intact
        by_name: dict[str, list[int]] = {}
        async for r in view.records():
            by_name.setdefault(r.tenant_id, []).append(int(r.request_id.rsplit("-", 1)[1]))
    return by_name


async def test_sigkill_under_load_keeps_one_intact_chain(backend: tuple[Path, SQLAuditStore], tmp_path: Path) -> None:
    config, store = backend
    logs = {name: tmp_path / f"{name}.log" for name in ("worker-a", "worker-b")}
    procs = {name: spawn(config, tmp_path / "data", name, log) for name, log in logs.items()}
    try:
        deadline = time.monotonic() + 60
        while (await store.head()).seq < 3000:  # both committing, under load
            assert all(p.poll() is None for p in procs.values()), [log.read_text() for log in logs.values()]
            assert time.monotonic() < deadline, "the appenders did not commit"
            await asyncio.sleep(0.05)
    finally:
        for p in procs.values():
            p.send_signal(signal.SIGKILL)
            p.wait()
    by_name = await committed(store)
    for name, log in logs.items():
        numbers = by_name[name]
        # Each process's events are committed in order and without holes: what it lost is a tail.
        assert numbers == list(range(1, len(numbers) + 1))
        lost = appended(log) - len(numbers)
        assert 0 <= lost <= 2_500, lost  # ~5,000 events/s: a flush interval (0.1 s) and a commit, with slack


async def test_sigterm_loses_nothing(backend: tuple[Path, SQLAuditStore], tmp_path: Path) -> None:
    config, store = backend
    log = tmp_path / "worker.log"
    proc = spawn(config, tmp_path / "data", "worker", log)
    deadline = time.monotonic() + 60
    while appended(log) < 2000:
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
        await asyncio.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0, log.read_text()
    closed = log.read_text().splitlines()[-1].split()
    assert closed[0] == "closed" and closed[3] == "0"
    assert (await committed(store))["worker"] == list(range(1, int(closed[1]) + 1))
