"""Counters shared by the worker processes of one machine through one SQLite file.

The embedded backend when ``passerelle serve --workers N`` runs several processes: in-process counters
would enforce every budget and rate limit once per worker (N workers, N times the limit).  Here every
write runs in a short transaction on one connection per process, so the processes stay exact.

- Group commit: writes (admit, settle, seed, first_time, cache_set) queue while a transaction runs, and the
  next one takes them all (up to ``MAX_BATCH``) in one executor hop: it reads the rows they touch with one
  SELECT per table, applies each in submission order with the pure rules of ``counters_memory`` (the same
  as every backend), writes the changed rows back and commits (see ``counters_sqlite_batch``).  The result
  is exactly that of running them one after another; one that raises is undone alone and fails only its
  caller.  At low load a batch holds one write; under load the hop, the lock and the commit are shared.
- A transaction takes the processes' file lock (``flock``: handed over at once, where SQLite's busy handler
  sleeps and lets one process starve another), then ``BEGIN IMMEDIATE`` (the write lock before reading, so
  no lock upgrade can fail).  Either waits at most the busy timeout, 5 s, then ``sqlite3.OperationalError``.
- SQLite blocks, so the calls run on a dedicated single-thread executor rather than ``asyncio.to_thread``:
  a burst then queues here instead of parking the default pool's threads (the ledger's, DNS lookups').
- Except one case, the fast path: an admission or settlement that finds no batch running and the file lock
  free (tried, never waited for) runs at once on the caller's thread.  Nothing in it can wait: the lock is
  held, and WAL with ``synchronous=OFF`` writes to the OS cache only.  Its ~40 us of SQLite cost less than
  the hop to the thread and back (~100 us of wake-ups measured here, twice per request); under load the
  lock is busy or a batch runs, and the writes queue for the thread as above.
- Money is INTEGER (pico-USD up to 2**63, about $9.2M) and compared in Python, so always exactly.
- Time is the wall clock, read once the write lock is held: processes must agree on it (the memory
  backend's monotonic clock is per process).  The operations of one batch share that instant.
- Not durable on purpose: WAL with ``synchronous=OFF`` never waits for the disk.  A crashed process loses
  nothing (its writes are in the OS cache); a crashed machine may lose or corrupt the file, and deleting it
  (gateway stopped) is safe: missing budget counters are re-seeded from the ledger, buckets restart full,
  slots, alert flags and the cache restart empty.
- A hard budget's reservation is also counted per process, in a charge row named after the process and the
  budget counter (``OWNED``); the sweep gives back to the budget what a dead process held (see ``owners``).
- Expired rows read as absent; the write transaction that meets one deletes it, and each process sweeps
  every table once a minute.
- The response cache holds at most ``max_cache_entries``, evicting the oldest *inserted* (a ``cache_set``
  of the same key counts as a new insertion), not the least recently used: a hit then stays a plain read
  that never takes the write lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Generic, TypeVar

from passerelle.stores import owners
from passerelle.stores.base import Admission, Bucket, Charge, Slot
from passerelle.stores.counters_memory import SWEEP_INTERVAL_S, decide_admit, settle_bucket, settle_charge
from passerelle.stores.counters_sqlite_batch import Batch, FileLock, marks

T = TypeVar("T")
BUSY_TIMEOUT_MS = 5000
MAX_BATCH = 128  # operations per transaction: bounds how long one process holds the write lock
OWNED = "\x1fowned:"  # charge rows "<OWNED><namespace>:<packed process id>:<counter>": a process's reservations


def _owned(counter: str) -> str:
    me = owners.current()
    return f"{OWNED}{me.namespace}:{me.packed()}:{counter}"

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


class _Op(Generic[T]):
    """A write waiting for its batch: its rule, the counters it touches (read ahead), its caller's future."""

    __slots__ = ("buckets", "charges", "error", "future", "result", "run", "slots")

    def __init__(self, run: Callable[[Batch], T], future: asyncio.Future[T], charges: Sequence[str],
                 buckets: Sequence[str], slots: Sequence[str]) -> None:
        self.run, self.future = run, future
        self.charges, self.buckets, self.slots = charges, buckets, slots
        self.result: Any = None
        self.error: BaseException | None = None


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
        self._file_lock = FileLock(path.with_name(path.name + ".lock"))  # orders the processes' transactions
        self._next_sweep = 0.0
        self._closed = False
        self._queue: list[_Op[Any]] = []  # writes waiting for the next batch
        self._running: list[_Op[Any]] = []  # the batch on the worker thread
        self._flushing = False  # a batch is running or about to: new writes wait for the next

    async def ping(self) -> None:
        await self._call(lambda db: db.execute("SELECT 1").fetchall())

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        waiting = [op.future for op in (*self._queue, *self._running)]
        try:  # the batches still pending complete; the close then queues behind the last one
            if waiting:
                await asyncio.wait(waiting)
            await asyncio.get_running_loop().run_in_executor(self._executor, self._close)
        finally:
            self._executor.shutdown(wait=False)

    async def admit(self, request_id: str, charges: Sequence[Charge], reserve_pico: int,
                    buckets: Sequence[Bucket], slots: Sequence[Slot]) -> Admission:
        owned = [_owned(c.counter) for c in charges] if reserve_pico else []

        def run(batch: Batch) -> Admission:
            values = [batch.charge(c.counter) for c in charges]
            tokens = [batch.tokens(b) for b in buckets]
            holders = [len(batch.holders(s.counter)) for s in slots]
            admission = decide_admit(charges, reserve_pico, buckets, slots, values, tokens, holders)
            if admission.ok:
                for charge, value in zip(charges, values, strict=True):
                    assert value is not None  # an absent charge refuses
                    batch.put_charge(charge.counter, value + reserve_pico)
                for name in owned:
                    batch.put_charge(name, (batch.charge(name) or 0) + reserve_pico, None)
                for bucket, available in zip(buckets, tokens, strict=True):
                    batch.put_tokens(bucket, available - bucket.cost)
                for slot in slots:
                    batch.hold(slot.counter, request_id, batch.now + slot.lease_s)
            return admission

        return await self._write(run, [c.counter for c in charges] + owned, [b.counter for b in buckets],
                                 [s.counter for s in slots], inline=True)

    async def settle(self, request_id: str, charges: Sequence[Charge], reserved_pico: int, actual_pico: int,
                     buckets: Sequence[Bucket], actual_costs: Sequence[int], slots: Sequence[Slot]) -> list[str]:
        owned = [_owned(c.counter) for c in charges] if reserved_pico else []

        def run(batch: Batch) -> list[str]:
            values = {c.counter: v for c in charges if (v := batch.charge(c.counter)) is not None}
            reserved = dict.fromkeys((c.counter for c in charges), 0)
            for charge, name in zip(charges, owned, strict=False):
                held = batch.charge(name)
                if held:  # else given back meanwhile (see _reclaim): the actual cost alone is settled
                    reserved[charge.counter] = min(held, reserved_pico)
                    batch.put_charge(name, held - reserved[charge.counter])
            crossed: list[str] = []
            for charge in charges:
                value = values.get(charge.counter)
                if value is None:  # expired with its period: nothing left to correct
                    continue
                values[charge.counter], crossing = settle_charge(charge, value, reserved[charge.counter],
                                                                 actual_pico)
                if crossing:
                    crossed.append(charge.counter)
            for counter, value in values.items():
                batch.put_charge(counter, value)
            tokens = [batch.tokens(b) for b in buckets]
            for bucket, available, actual in zip(buckets, tokens, actual_costs, strict=True):
                batch.put_tokens(bucket, settle_bucket(bucket, available, actual))
            for slot in slots:
                batch.release(slot.counter, request_id)
            return crossed

        return await self._write(run, [c.counter for c in charges] + owned, [b.counter for b in buckets],
                                 [s.counter for s in slots], inline=True)

    async def reclaim(self) -> int:
        def run(db: sqlite3.Connection) -> int:
            self._file_lock.acquire(BUSY_TIMEOUT_MS / 1000)
            try:
                db.execute("BEGIN IMMEDIATE")
                reclaimed: list[int] = []
                self._finally_commit(db, lambda: reclaimed.append(self._reclaim(db, self._clock())))
                return reclaimed[0]
            finally:
                self._file_lock.release()

        return await self._call(run)

    async def seed(self, counter: str, value_pico: int, ttl_s: int | None) -> None:
        def run(batch: Batch) -> None:
            expiry = batch.now + max(1, ttl_s) if ttl_s is not None else None
            if batch.charge(counter) is None:  # absent or expired: a live counter is never overwritten
                batch.put_charge(counter, value_pico, expiry)

        await self._write(run, [counter])

    async def committed(self, counters: Sequence[str]) -> list[int | None]:
        if not counters:
            return []

        def run(db: sqlite3.Connection) -> list[int | None]:
            rows = db.execute(f"SELECT counter, value FROM charges WHERE counter IN ({marks(len(counters))}) "
                              "AND (expiry IS NULL OR expiry > ?)", (*counters, self._clock())).fetchall()
            values: dict[str, int] = dict(rows)
            return [values.get(counter) for counter in counters]

        return await self._call(run)

    async def first_time(self, flag: str, ttl_s: int) -> bool:
        def run(db: sqlite3.Connection, now: float) -> bool:
            cursor = db.execute("INSERT INTO flags VALUES (?, ?) ON CONFLICT(flag) DO UPDATE SET "
                                "expiry = excluded.expiry WHERE flags.expiry <= ?", (flag, now + max(1, ttl_s), now))
            return cursor.rowcount == 1  # 0: the flag was up and nothing changed

        return await self._write(lambda batch: batch.statements(run))

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

        await self._write(lambda batch: batch.statements(run))

    # the event-loop side of group commit

    def _write(self, run: Callable[[Batch], T], charges: Sequence[str] = (), buckets: Sequence[str] = (),
               slots: Sequence[str] = (), *, inline: bool = False) -> asyncio.Future[T]:
        if self._closed:
            raise RuntimeError("the counters are closed")
        loop = asyncio.get_running_loop()
        op = _Op(run, loop.create_future(), charges, buckets, slots)
        if inline and not self._flushing and self._run_inline(op):
            return op.future
        self._queue.append(op)
        if not self._flushing:  # at once: at low load a write costs one hop, as alone; else it waits for the
            self._flushing = True  # running batch's end, which starts the next one with all that queued meanwhile
            self._flush(loop)
        return op.future

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        """Hands the queued writes whose callers still wait (cancelled ones are dropped) to the worker thread."""
        self._queue = [op for op in self._queue if not op.future.done()]
        ops, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
        self._running = ops
        if not ops:
            self._flushing = False
            return

        def done(_: object) -> None:  # on the worker thread
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
                loop.call_soon_threadsafe(self._finish, loop, ops)

        try:
            self._executor.submit(self._execute, ops).add_done_callback(done)
        except RuntimeError as exc:  # shut down (an aclose cancelled while writes waited): fail, never hang
            for op in ops:
                op.error = exc
            self._finish(loop, ops)

    def _finish(self, loop: asyncio.AbstractEventLoop, ops: list[_Op[Any]]) -> None:
        for op in ops:
            if op.future.done():  # the caller was cancelled: the write happened, nobody reads its result
                continue
            if op.error is not None:
                op.future.set_exception(op.error)
            else:
                op.future.set_result(op.result)
        self._flush(loop)

    def _run_inline(self, op: _Op[Any]) -> bool:
        """The fast path (see the module's docstring): False, having done nothing, when it would have to wait."""
        if self._conn is None or not self._lock.acquire(blocking=False):
            return False  # not opened yet (the thread opens it) or a read runs on the thread
        try:
            if not self._file_lock.try_acquire():
                return False
            try:
                self._commit(self._conn, [op])
            except BaseException as exc:
                op.error = exc
            finally:
                self._file_lock.release()
        finally:
            self._lock.release()
        if op.error is not None:
            op.future.set_exception(op.error)
        else:
            op.future.set_result(op.result)
        return True

    # the worker-thread side

    async def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Runs a read on the worker thread, between batches."""

        def locked() -> T:
            with self._lock:
                return fn(self._db())

        return await asyncio.get_running_loop().run_in_executor(self._executor, locked)

    def _execute(self, ops: list[_Op[Any]]) -> None:
        with self._lock:
            try:
                db = self._db()
                self._file_lock.acquire(BUSY_TIMEOUT_MS / 1000)
                try:
                    self._commit(db, ops)
                finally:
                    self._file_lock.release()
            except BaseException as exc:  # no file, or no write lock within the busy timeout: every one fails
                for op in ops:
                    op.error = exc

    def _commit(self, db: sqlite3.Connection, ops: list[_Op[Any]]) -> None:
        """One transaction for the batch; each operation's result or error is set on it."""
        now = self._clock()
        if now >= self._next_sweep:
            self._next_sweep = now + SWEEP_INTERVAL_S
            db.execute("BEGIN IMMEDIATE")
            self._finally_commit(db, lambda: self._sweep(db, self._clock()))
        db.execute("BEGIN IMMEDIATE")
        outcomes: list[tuple[Any, Exception | None]] = []

        def apply() -> None:
            batch = Batch(db, self._clock())  # the clock again, now that this process holds the write lock
            batch.read([c for op in ops for c in op.charges], [b for op in ops for b in op.buckets],
                       [s for op in ops for s in op.slots])
            for op in ops:
                mark = batch.mark()
                try:
                    outcomes.append((op.run(batch), None))
                except Exception as exc:
                    batch.undo(mark)
                    outcomes.append((None, exc))
            batch.write()

        try:
            self._finally_commit(db, apply)
        except Exception:
            if len(ops) == 1:
                raise
            for op in ops:  # something beyond one operation failed (its rows, the commit): each alone then
                try:
                    self._commit(db, [op])
                except Exception as exc:
                    op.error = exc
            return
        for op, (result, error) in zip(ops, outcomes, strict=True):
            op.result, op.error = result, error

    @staticmethod
    def _finally_commit(db: sqlite3.Connection, fn: Callable[[], None]) -> None:
        try:
            fn()
            db.execute("COMMIT")
        finally:
            if db.in_transaction:
                db.execute("ROLLBACK")

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # One process at a time: switching a new file to WAL fails at once (no busy wait) while another
            # process creates the schema, as half of simultaneous first opens did.
            self._file_lock.acquire(BUSY_TIMEOUT_MS / 1000)
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
            finally:
                self._file_lock.release()
            self._conn = db
        return self._conn

    def _close(self) -> None:
        with self._lock:
            self._file_lock.close()
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    @staticmethod
    def _reclaim(db: sqlite3.Connection, now: float) -> int:
        """Gives back what dead processes held reserved (deleting the rows that hold nothing); returns it, in pico."""
        me, reclaimed = owners.current(), 0
        for name, held in db.execute("SELECT counter, value FROM charges WHERE counter >= ? AND counter < ?",
                                     (OWNED, OWNED[:-1] + chr(ord(OWNED[-1]) + 1))).fetchall():
            namespace, packed, counter = name[len(OWNED):].split(":", 2)
            owner = owners.ProcessId.unpack(int(packed), int(namespace))
            if held and (owner == me or owners.alive(owner) is not False):
                continue
            if held:
                db.execute("UPDATE charges SET value = value - ? WHERE counter = ? AND (expiry IS NULL OR expiry > ?)",
                           (held, counter, now))
                reclaimed += held
            db.execute("DELETE FROM charges WHERE counter = ?", (name,))
        return owners.report(reclaimed)

    def _sweep(self, db: sqlite3.Connection, now: float) -> None:
        """Drop what has expired so the file stays bounded by the live counters, and give back what dead processes
        held reserved."""
        self._reclaim(db, now)
        db.execute("DELETE FROM charges WHERE expiry <= ?", (now,))
        db.execute("DELETE FROM buckets WHERE full_at <= ?", (now,))
        db.execute("DELETE FROM slots WHERE lease_expiry <= ?", (now,))
        db.execute("DELETE FROM flags WHERE expiry <= ?", (now,))
        db.execute("DELETE FROM cache WHERE expiry <= ?", (now,))
