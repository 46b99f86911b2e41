"""Counters shared by the worker processes of one machine through one SQLite file.

The embedded backend when ``passerelle serve --workers N`` runs several processes: in-process counters
would enforce every budget and rate limit once per worker (N workers, N times the limit).  Here every
operation is one short transaction on one connection per process, so the processes stay exact.

- Writes open with ``BEGIN IMMEDIATE``: a transaction takes the file's write lock before it reads, so
  processes queue on the busy timeout (5 s, then ``sqlite3.OperationalError``) instead of failing on a
  lock upgrade.  Each reads the few rows involved, decides with the pure rules of ``counters_memory``
  (the same as every backend), writes, commits.
- SQLite blocks, so the calls run on a dedicated single-thread executor rather than ``asyncio.to_thread``:
  a burst of admissions then queues there instead of parking the default pool's threads (the ledger's,
  DNS lookups') on the connection's lock.
- Money is INTEGER (pico-USD up to 2**63, about $9.2M) and compared in Python, so always exactly.
- Time is the wall clock, read once the write lock is held: processes must agree on it (the memory
  backend's monotonic clock is per process).
- Not durable on purpose: WAL with ``synchronous=OFF`` never waits for the disk.  A crashed process loses
  nothing (its writes are in the OS cache); a crashed machine may lose or corrupt the file, and deleting it
  (gateway stopped) is safe: missing budget counters are re-seeded from the ledger, buckets restart full,
  slots, alert flags and the cache restart empty.
- Expired rows read as absent; the write transaction that meets one deletes it, and each process sweeps
  every table once a minute.
- The response cache holds at most ``max_cache_entries``, evicting the oldest *inserted* (a ``cache_set``
  of the same key counts as a new insertion), not the least recently used: a hit then stays a plain read
  that never takes the write lock.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from passerelle.stores.base import Admission, Bucket, Charge, Slot
from passerelle.stores.counters_memory import (
    SWEEP_INTERVAL_S,
    bucket_tokens,
    decide_admit,
    seconds_to_fill,
    settle_bucket,
    settle_charge,
)

T = TypeVar("T")
BUSY_TIMEOUT_MS = 5000

SCHEMA = """
BEGIN IMMEDIATE;
CREATE TABLE IF NOT EXISTS charges (counter TEXT PRIMARY KEY, value INTEGER NOT NULL, expiry REAL)
    STRICT, WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS buckets (counter TEXT PRIMARY KEY, tokens REAL NOT NULL, ts REAL NOT NULL,
    full_at REAL NOT NULL) STRICT, WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS slots (counter TEXT NOT NULL, request_id TEXT NOT NULL, lease_expiry REAL NOT NULL,
    PRIMARY KEY (counter, request_id)) STRICT, WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS flags (flag TEXT PRIMARY KEY, expiry REAL NOT NULL) STRICT, WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS cache (seq INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, value BLOB NOT NULL,
    expiry REAL NOT NULL) STRICT;
COMMIT;
"""


def _marks(n: int) -> str:
    return ",".join("?" * n)


class SQLiteCounters:
    def __init__(self, path: Path, max_cache_entry_bytes: int = 1 << 20, max_cache_entries: int = 10_000,
                 clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self._max_cache_entry_bytes = max_cache_entry_bytes
        self._max_cache_entries = max_cache_entries
        self._clock = clock
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="passerelle-counters")
        self._lock = threading.Lock()  # the executor has one thread: this only guards against other callers
        self._conn: sqlite3.Connection | None = None  # opened on the worker thread by the first call
        self._next_sweep = 0.0
        self._closed = False

    async def ping(self) -> None:
        await self._call(lambda db: db.execute("SELECT 1").fetchall())

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:  # queued behind the calls still pending, which therefore complete
            await asyncio.get_running_loop().run_in_executor(self._executor, self._close)
        finally:
            self._executor.shutdown(wait=False)

    async def admit(self, request_id: str, charges: Sequence[Charge], reserve_pico: int,
                    buckets: Sequence[Bucket], slots: Sequence[Slot]) -> Admission:
        def run(db: sqlite3.Connection, now: float) -> Admission:
            values = self._read_charges(db, [c.counter for c in charges], now)
            tokens = self._read_tokens(db, buckets, now)
            holders: dict[str, int] = {}
            if slots:
                names = [s.counter for s in slots]
                db.execute(f"DELETE FROM slots WHERE counter IN ({_marks(len(names))}) AND lease_expiry <= ?",
                           (*names, now))  # leases of crashed requests lapse
                holders = dict(db.execute(f"SELECT counter, count(*) FROM slots WHERE counter IN "
                                          f"({_marks(len(names))}) GROUP BY counter", names).fetchall())
            admission = decide_admit(charges, reserve_pico, buckets, slots, [values.get(c.counter) for c in charges],
                                     tokens, [holders.get(s.counter, 0) for s in slots])
            if admission.ok:
                db.executemany("UPDATE charges SET value = ? WHERE counter = ?",
                               [(values[c.counter] + reserve_pico, c.counter) for c in charges])
                self._write_tokens(db, buckets, [t - b.cost for b, t in zip(buckets, tokens, strict=True)], now)
                db.executemany("INSERT OR REPLACE INTO slots VALUES (?, ?, ?)",
                               [(s.counter, request_id, now + s.lease_s) for s in slots])
            return admission

        return await self._write(run)

    async def settle(self, request_id: str, charges: Sequence[Charge], reserved_pico: int, actual_pico: int,
                     buckets: Sequence[Bucket], actual_costs: Sequence[int], slots: Sequence[Slot]) -> list[str]:
        def run(db: sqlite3.Connection, now: float) -> list[str]:
            values = self._read_charges(db, [c.counter for c in charges], now)
            crossed: list[str] = []
            for charge in charges:
                value = values.get(charge.counter)
                if value is None:  # expired with its period: nothing left to correct
                    continue
                values[charge.counter], crossing = settle_charge(charge, value, reserved_pico, actual_pico)
                if crossing:
                    crossed.append(charge.counter)
            db.executemany("UPDATE charges SET value = ? WHERE counter = ?",
                           [(value, counter) for counter, value in values.items()])
            tokens = self._read_tokens(db, buckets, now)
            self._write_tokens(db, buckets, [settle_bucket(b, t, actual) for b, t, actual
                                             in zip(buckets, tokens, actual_costs, strict=True)], now)
            db.executemany("DELETE FROM slots WHERE counter = ? AND request_id = ?",
                           [(s.counter, request_id) for s in slots])
            return crossed

        return await self._write(run)

    async def seed(self, counter: str, value_pico: int, ttl_s: int | None) -> None:
        def run(db: sqlite3.Connection, now: float) -> None:
            expiry = now + max(1, ttl_s) if ttl_s is not None else None
            db.execute("INSERT INTO charges VALUES (?, ?, ?) ON CONFLICT(counter) DO UPDATE SET value = "
                       "excluded.value, expiry = excluded.expiry WHERE charges.expiry <= ?",
                       (counter, value_pico, expiry, now))

        await self._write(run)

    async def committed(self, counters: Sequence[str]) -> list[int | None]:
        if not counters:
            return []

        def run(db: sqlite3.Connection) -> list[int | None]:
            rows = db.execute(f"SELECT counter, value FROM charges WHERE counter IN ({_marks(len(counters))}) "
                              "AND (expiry IS NULL OR expiry > ?)", (*counters, self._clock())).fetchall()
            values: dict[str, int] = dict(rows)
            return [values.get(counter) for counter in counters]

        return await self._call(run)

    async def first_time(self, flag: str, ttl_s: int) -> bool:
        def run(db: sqlite3.Connection, now: float) -> bool:
            cursor = db.execute("INSERT INTO flags VALUES (?, ?) ON CONFLICT(flag) DO UPDATE SET "
                                "expiry = excluded.expiry WHERE flags.expiry <= ?", (flag, now + max(1, ttl_s), now))
            return cursor.rowcount == 1  # 0: the flag was up and nothing changed

        return await self._write(run)

    async def cache_get(self, key: str) -> bytes | None:
        def run(db: sqlite3.Connection) -> bytes | None:
            row = db.execute("SELECT value FROM cache WHERE key = ? AND expiry > ?", (key, self._clock())).fetchone()
            return None if row is None else bytes(row[0])

        return await self._call(run)

    async def cache_set(self, key: str, value: bytes, ttl_s: float) -> None:
        if ttl_s <= 0 or len(value) > self._max_cache_entry_bytes or self._max_cache_entries <= 0:
            return

        def run(db: sqlite3.Connection, now: float) -> None:
            db.execute("INSERT OR REPLACE INTO cache(key, value, expiry) VALUES (?, ?, ?)", (key, value, now + ttl_s))
            # count(*) walks the small key index, never the values.
            excess = db.execute("SELECT count(*) FROM cache").fetchone()[0] - self._max_cache_entries
            if excess > 0:
                db.execute("DELETE FROM cache WHERE seq IN (SELECT seq FROM cache ORDER BY seq LIMIT ?)", (excess,))

        await self._write(run)

    # the worker-thread side

    async def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Runs ``fn`` on the worker thread: a single read as is, a write through ``_write``."""

        def locked() -> T:
            with self._lock:
                return fn(self._db())

        return await asyncio.get_running_loop().run_in_executor(self._executor, locked)

    async def _write(self, fn: Callable[[sqlite3.Connection, float], T]) -> T:
        return await self._call(lambda db: self._transaction(db, fn))

    def _transaction(self, db: sqlite3.Connection, fn: Callable[[sqlite3.Connection, float], T]) -> T:
        now = self._clock()
        if now >= self._next_sweep:
            self._next_sweep = now + SWEEP_INTERVAL_S
            self._transaction(db, self._sweep)
        db.execute("BEGIN IMMEDIATE")
        try:
            result = fn(db, self._clock())  # the clock again, now that this process holds the write lock
            db.execute("COMMIT")
        finally:
            if db.in_transaction:
                db.execute("ROLLBACK")
        return result

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                                 check_same_thread=False)
            try:
                db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=OFF")  # counters are not durable state: see the module's docstring
                db.executescript(SCHEMA)
            except BaseException:
                db.close()
                raise
            self._conn = db
        return self._conn

    def _close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _read_charges(self, db: sqlite3.Connection, counters: Sequence[str], now: float) -> dict[str, int]:
        """The live committed values; expired ones are deleted (inside the caller's write transaction)."""
        if not counters:
            return {}
        rows = db.execute(f"SELECT counter, value, expiry FROM charges WHERE counter IN ({_marks(len(counters))})",
                          counters).fetchall()
        expired = [(counter,) for counter, _, expiry in rows if expiry is not None and expiry <= now]
        db.executemany("DELETE FROM charges WHERE counter = ?", expired)
        return {counter: value for counter, value, expiry in rows if expiry is None or expiry > now}

    def _read_tokens(self, db: sqlite3.Connection, buckets: Sequence[Bucket], now: float) -> list[float]:
        if not buckets:
            return []
        names = [b.counter for b in buckets]
        rows = db.execute(f"SELECT counter, tokens, ts FROM buckets WHERE counter IN ({_marks(len(names))})",
                          names).fetchall()
        states: dict[str, tuple[float, float]] = {counter: (tokens, ts) for counter, tokens, ts in rows}
        return [bucket_tokens(states.get(b.counter), b, now) for b in buckets]

    def _write_tokens(self, db: sqlite3.Connection, buckets: Sequence[Bucket], tokens: Sequence[float],
                      now: float) -> None:
        # full_at lets the sweep drop full buckets: a bucket that is absent is full.
        db.executemany("INSERT OR REPLACE INTO buckets VALUES (?, ?, ?, ?)",
                       [(b.counter, t, now, now + seconds_to_fill(b, t)) for b, t in zip(buckets, tokens, strict=True)])

    def _sweep(self, db: sqlite3.Connection, now: float) -> None:
        """Drop what has expired so the file stays bounded by the live counters."""
        db.execute("DELETE FROM charges WHERE expiry <= ?", (now,))
        db.execute("DELETE FROM buckets WHERE full_at <= ?", (now,))
        db.execute("DELETE FROM slots WHERE lease_expiry <= ?", (now,))
        db.execute("DELETE FROM flags WHERE expiry <= ?", (now,))
        db.execute("DELETE FROM cache WHERE expiry <= ?", (now,))
