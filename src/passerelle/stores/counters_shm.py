"""Counters shared by the worker processes of one machine through a memory-mapped file.

The embedded backend when ``passerelle serve --workers N`` runs several processes (in-process counters
would enforce every limit once per worker).  Budgets, rate-limit buckets and concurrency slots live in
``counters.shm``: two open-addressing hash tables of fixed 56-byte records that every worker maps, each
operation reading and writing them under one ``flock``.  An admission or settlement is then a few
struct reads and writes, where the SQLite transactions this replaces were the largest cost budgets and
rate limits added to a request (several times slower inside a busy worker than in isolation).
Alert flags and the response cache are neither hot nor fixed-size: they stay in ``SQLiteCounters``.

- Records are keyed by a 16-byte BLAKE2b digest of their kind and name (an all-zero key is an empty
  record, all-0xff a deleted one); the operations are the pure rules of ``counters_memory``, so the
  results match every other backend.
- An operation runs on the event loop's thread when nobody holds the lock (tried, never blocked on:
  it is held for microseconds); otherwise the loop goes on with other work and the operation tries
  again, at once and then backing off up to a millisecond, so the event loop never blocks.  Every
  record an operation needs is found or allocated before anything is changed: a full table fails the
  operation (503 upstream of here) and changes nothing.
- Time is the wall clock, read under the lock: processes must agree on it.
- Not durable, as the SQLite file was not: a crashed process loses nothing (the pages are the OS's), a
  crashed machine may lose the file, and deleting it (gateway stopped) is safe: budget counters are
  re-seeded from the ledger, buckets restart full, slots empty.  A file of another layout is reset.
- A hard budget's reservation is also counted per process (an ``OWNED`` record per budget counter and
  worker: pid, start time, pid namespace; see ``owners``).  The sweep gives back to the budget what a
  dead worker held reserved, so a worker killed mid-request does not keep its budget spent; a worker
  settling a reservation no longer counted (the file was reset) settles its actual cost alone.
- Expired records read as absent and are reused in place; each process sweeps both tables once a minute,
  on its event loop between requests, a chunk of records per hold of the lock.  (A helper thread held
  the lock while it waited for the interpreter lock, and operations retrying on the loop kept that from
  it: on a slow machine a sweep under contention held other operations past the lock timeout.)
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import math
import mmap
import os
import sqlite3
import struct
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from passerelle.stores import owners
from passerelle.stores.base import Admission, Bucket, Charge, Slot
from passerelle.stores.counters_memory import (
    SWEEP_INTERVAL_S,
    bucket_tokens,
    decide_admit,
    seconds_to_fill,
    settle_bucket,
    settle_charge,
)
from passerelle.stores.counters_sqlite import BUSY_TIMEOUT_MS, SQLiteCounters
from passerelle.stores.counters_sqlite_batch import FileLock

T = TypeVar("T")

MAGIC = b"PSLCTR01"
HEADER = struct.Struct("<8sII")  # magic, records, holder records
HEADER_BYTES = 4096
RECORD = struct.Struct("<16sc7xqddd")  # key, kind, i, x, y, z
# The hot fields alone, read and written in place (offsets into a record): a charge's value, a charge's value and
# expiry, a bucket's tokens, time and full-at.
_I, _I_X, _XYZ = struct.Struct("<q"), struct.Struct("<qd"), struct.Struct("<ddd")
_I_AT, _X_AT = 24, 32
EMPTY = bytes(16)
DELETED = b"\xff" * 16
NEVER = math.inf
# record kinds: charge (i value, x expiry), bucket (x tokens, y at, z full at), slot (i holders, x earliest lease),
# owned (OWNED_RECORD: what one process holds reserved on one charge); holder records, in their own table: i = the
# slot's key prefix, x = lease expiry
CHARGE, BUCKET, SLOT, HOLDER, OWNED = b"c", b"b", b"s", b"h", b"o"
OWNED_RECORD = struct.Struct("<16sc7xqqqq")  # key, kind, reserved pico, owner (ProcessId.packed), its namespace, charge

SWEEP_CHUNK = 512  # records swept per hold of the lock: a fraction of a millisecond
MIN_PAUSE_S, MAX_PAUSE_S = 0.00005, 0.001  # between tries of a lock another worker holds


def _key(kind: bytes, name: str) -> bytes:
    key = hashlib.blake2b(kind + name.encode(), digest_size=16).digest()
    return key if key not in (EMPTY, DELETED) else hashlib.blake2b(key, digest_size=16).digest()


_counter_key = functools.lru_cache(maxsize=4096)(_key)  # the few counters every request names; not holders


def _holder_key(counter: str, request_id: str) -> bytes:
    return _key(HOLDER, f"{counter}\0{request_id}")


def _prefix(key: bytes) -> int:
    """A key's first 8 bytes, which also choose where its probe starts: enough to find it again."""
    return int.from_bytes(key[:8], "little", signed=True)


class TableFull(RuntimeError):
    """More live counters (or held slots) than the file has records for."""


class _Table:
    """One open-addressing table (linear probing) of ``RECORD``s in the mapped file."""

    def __init__(self, buf: mmap.mmap, offset: int, size: int, name: str) -> None:
        self.buf, self.offset, self.size, self.name = buf, offset, size, name
        self.mask = size - 1
        # Where this process last found each key: checked against the record's key before use, since any process
        # may delete a record and the key may come back elsewhere.  Bounded: cleared when it outgrows the table.
        self._seen: dict[bytes, int] = {}

    def find(self, key: bytes) -> int:
        """The record's offset, or -1."""
        at = self._seen.get(key, -1)
        if at >= 0 and self.buf[at:at + 16] == key:
            return at
        at = self._probe(key)
        if at >= 0:
            self._remember(key, at)
        return at

    def _remember(self, key: bytes, at: int) -> None:
        if len(self._seen) >= self.size:
            self._seen.clear()
        self._seen[key] = at

    def _probe(self, key: bytes) -> int:
        buf, base, mask = self.buf, self.offset, self.mask
        i = int.from_bytes(key[:8], "little") & mask
        for _ in range(self.size):
            at = base + i * RECORD.size
            k = buf[at:at + 16]
            if k == key:
                return at
            if k == EMPTY:
                return -1
            i = (i + 1) & mask
        return -1

    def place(self, key: bytes, neutral: tuple[bytes, int, float, float, float]) -> int:
        """The record's offset, creating it (holding ``neutral``, which reads as absent) if it is missing."""
        at = self.find(key)
        if at >= 0:
            return at
        buf, base, mask = self.buf, self.offset, self.mask
        i = int.from_bytes(key[:8], "little") & mask
        for _ in range(self.size):
            at = base + i * RECORD.size
            if buf[at:at + 16] in (EMPTY, DELETED):
                RECORD.pack_into(buf, at, key, *neutral)
                self._remember(key, at)
                return at
            i = (i + 1) & mask
        raise TableFull(f"the shared counters file has no free {self.name} record; delete it while the gateway "
                        "is stopped, or lower the number of live counters")

    def find_prefix(self, prefix: int) -> int:
        """The offset of the record whose key starts with ``prefix`` (see ``_prefix``), or -1."""
        buf, base, mask = self.buf, self.offset, self.mask
        start = prefix.to_bytes(8, "little", signed=True)
        i = prefix & mask
        for _ in range(self.size):
            at = base + i * RECORD.size
            k = buf[at:at + 16]
            if k[:8] == start:
                return at
            if k == EMPTY:
                return -1
            i = (i + 1) & mask
        return -1

    def delete(self, at: int) -> None:
        self.buf[at:at + 16] = DELETED

    def records(self, first: int = 0, count: int | None = None
                ) -> list[tuple[int, tuple[bytes, bytes, int, float, float, float]]]:
        """The used records among ``count`` from number ``first`` (all by default), with their offsets."""
        start = self.offset + first * RECORD.size
        end = self.offset + (self.size if count is None else min(self.size, first + count)) * RECORD.size
        return [(start + n * RECORD.size, rec) for n, rec in enumerate(RECORD.iter_unpack(self.buf[start:end]))
                if rec[0] not in (EMPTY, DELETED)]


class _State:
    """The operations' view of the tables while the lock is held."""

    def __init__(self, counters: SharedMemoryCounters, now: float) -> None:
        self.main, self.holders, self.now = counters._main, counters._holders, now
        self.buf = counters._buf
        self.owner, self.owned_keys = counters._owner, counters._owned_keys

    # charges

    def charge_at(self, counter: str, create: bool) -> int:
        key = _counter_key(CHARGE, counter)
        return self.main.place(key, (CHARGE, 0, -NEVER, 0.0, 0.0)) if create else self.main.find(key)

    def charge(self, at: int) -> int | None:
        if at < 0:
            return None
        value, expiry = _I_X.unpack_from(self.buf, at + _I_AT)
        return None if expiry <= self.now else int(value)

    def put_charge(self, at: int, value: int, expiry: float | None = None) -> None:
        if not -(2**63) <= value < 2**63:
            raise OverflowError("a budget counter beyond 2**63 pico-USD")
        if expiry is None:
            _I.pack_into(self.buf, at + _I_AT, value)
        else:
            _I_X.pack_into(self.buf, at + _I_AT, value, expiry)

    # reservations: what this process holds reserved on each charge

    def owned_key(self, counter: str) -> bytes:
        key = self.owned_keys.get(counter)
        if key is None:
            if len(self.owned_keys) >= 4096:  # the counters of a few days' keys; bounded all the same
                self.owned_keys.clear()
            key = self.owned_keys[counter] = _key(OWNED, f"{counter}\0{self.owner.packed()}")
        return key

    def owned_at(self, counter: str) -> int:
        """This process's record for ``counter``, created (holding nothing) if missing."""
        key = self.owned_key(counter)
        at = self.main.find(key)
        if at < 0:
            owner = self.owner
            at = self.main.place(key, (OWNED, 0, 0.0, 0.0, 0.0))
            OWNED_RECORD.pack_into(self.buf, at, key, OWNED, 0, owner.packed(), owner.namespace,
                                   _prefix(_counter_key(CHARGE, counter)))
        return at

    def reserve(self, at: int, amount: int) -> None:
        held = _I.unpack_from(self.buf, at + _I_AT)[0]
        _I.pack_into(self.buf, at + _I_AT, held + amount)

    def unreserve(self, counter: str, amount: int) -> int:
        """Takes ``amount`` off this process's reservation on ``counter``; returns how much of it was there."""
        at = self.main.find(self.owned_key(counter))
        if at < 0:
            return 0
        held: int = _I.unpack_from(self.buf, at + _I_AT)[0]
        taken = amount if amount <= held else held
        _I.pack_into(self.buf, at + _I_AT, held - taken)
        return taken

    # buckets

    def bucket_at(self, bucket: Bucket) -> int:
        return self.main.place(_counter_key(BUCKET, bucket.counter), (BUCKET, 0, 0.0, 0.0, -NEVER))

    def tokens(self, at: int, bucket: Bucket) -> float:
        tokens, ts, full_at = _XYZ.unpack_from(self.buf, at + _X_AT)
        return bucket_tokens(None if full_at <= self.now else (tokens, ts), bucket, self.now)

    def put_tokens(self, at: int, bucket: Bucket, tokens: float) -> None:
        if tokens != tokens:
            raise ValueError("a bucket's tokens cannot be NaN")
        _XYZ.pack_into(self.buf, at + _X_AT, tokens, self.now, self.now + seconds_to_fill(bucket, tokens))

    # slots: a count per slot, and one holder record per (slot, request) with its lease

    def slot_at(self, slot: Slot) -> int:
        return self.main.place(_counter_key(SLOT, slot.counter), (SLOT, 0, NEVER, 0.0, 0.0))

    def holding(self, at: int) -> int:
        """Live holders of the slot at ``at``; recounted from the holder records once a lease may have lapsed."""
        key, _, count, earliest, _, _ = RECORD.unpack_from(self.buf, at)
        if earliest > self.now:
            return int(count)
        prefix = int.from_bytes(key[:8], "little", signed=True)
        live = 0
        earliest = NEVER
        for rec_at, (_, _, owner, lease, _, _) in self.holders.records():
            if owner != prefix:
                continue
            if lease <= self.now:
                self.holders.delete(rec_at)
            else:
                live += 1
                earliest = min(earliest, lease)
        RECORD.pack_into(self.buf, at, key, SLOT, live, earliest, 0.0, 0.0)
        return live

    def hold(self, at: int, slot: Slot, request_id: str) -> None:
        key, _, count, earliest, _, _ = RECORD.unpack_from(self.buf, at)
        lease = self.now + slot.lease_s
        holder = self.holders.place(_holder_key(slot.counter, request_id), (HOLDER, 0, -NEVER, 0.0, 0.0))
        _, _, _, previous, _, _ = RECORD.unpack_from(self.buf, holder)
        RECORD.pack_into(self.buf, holder, self.buf[holder:holder + 16], HOLDER,
                         int.from_bytes(key[:8], "little", signed=True), lease, 0.0, 0.0)
        RECORD.pack_into(self.buf, at, key, SLOT, count + (previous <= self.now), min(earliest, lease), 0.0, 0.0)

    def release(self, slot: Slot, request_id: str) -> None:
        holder = self.holders.find(_holder_key(slot.counter, request_id))
        if holder < 0:
            return
        _, _, _, lease, _, _ = RECORD.unpack_from(self.buf, holder)
        self.holders.delete(holder)
        at = self.main.find(_counter_key(SLOT, slot.counter))
        if at >= 0 and lease > self.now:
            key, _, count, earliest, _, _ = RECORD.unpack_from(self.buf, at)
            RECORD.pack_into(self.buf, at, key, SLOT, max(0, count - 1), earliest, 0.0, 0.0)


class SharedMemoryCounters:
    def __init__(self, path: Path, records: int = 1 << 16, holders: int = 1 << 14,
                 max_cache_entry_bytes: int = 1 << 20, max_cache_entries: int = 10_000,
                 clock: Callable[[], float] = time.time) -> None:
        if records & (records - 1) or holders & (holders - 1):
            raise ValueError("records and holders must be powers of two")
        self.path = path
        self._clock = clock
        # Flags and the response cache: rare, variable-sized, so in SQLite beside this file.
        self._sql = SQLiteCounters(path.with_suffix(".db"), max_cache_entry_bytes=max_cache_entry_bytes,
                                   max_cache_entries=max_cache_entries, clock=clock)
        self._lock = FileLock(path.with_name(path.name + ".lock"))
        self._sweeping: asyncio.Task[int] | None = None
        self._buf = self._open(path, records, holders)
        self._main = _Table(self._buf, HEADER_BYTES, records, "counter")
        self._holders = _Table(self._buf, HEADER_BYTES + records * RECORD.size, holders, "slot holder")
        self._next_sweep = 0.0
        self._closed = False
        self._owner = owners.current()
        self._owned_keys: dict[str, bytes] = {}  # budget counter -> key of this process's OWNED record

    def _open(self, path: Path, records: int, holders: int) -> mmap.mmap:
        path.parent.mkdir(parents=True, exist_ok=True)
        size = HEADER_BYTES + (records + holders) * RECORD.size
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            self._lock.acquire(BUSY_TIMEOUT_MS / 1000)  # one process lays the file out; the others find it done
            try:
                header = os.pread(fd, HEADER.size, 0)
                if header != HEADER.pack(MAGIC, records, holders) or os.fstat(fd).st_size != size:
                    os.ftruncate(fd, 0)  # another layout (or a torn first start): counters restart, see above
                    os.ftruncate(fd, size)  # a sparse file: untouched records take no memory
                    os.pwrite(fd, HEADER.pack(MAGIC, records, holders), 0)
            finally:
                self._lock.release()
            return mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        finally:
            os.close(fd)  # the mapping keeps the file

    async def ping(self) -> None:
        if self._closed:
            raise RuntimeError("the counters are closed")

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._sweeping is not None:
            self._sweeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeping
        self._lock.close()  # operations run on the loop, whole: none is under way here
        self._buf.close()
        await self._sql.aclose()

    # the operations

    async def admit(self, request_id: str, charges: Sequence[Charge], reserve_pico: int,
                    buckets: Sequence[Bucket], slots: Sequence[Slot]) -> Admission:
        def run(s: _State) -> Admission:
            charge_at = [s.charge_at(c.counter, False) for c in charges]
            bucket_at = [s.bucket_at(b) for b in buckets]
            slot_at = [s.slot_at(slot) for slot in slots]
            values = [s.charge(at) for at in charge_at]
            tokens = [s.tokens(at, b) for at, b in zip(bucket_at, buckets, strict=True)]
            holding = [s.holding(at) for at in slot_at]
            admission = decide_admit(charges, reserve_pico, buckets, slots, values, tokens, holding)
            if admission.ok:
                for slot in slots:  # allocates holder records first: a full table then changes nothing
                    s.holders.place(_holder_key(slot.counter, request_id), (HOLDER, 0, -NEVER, 0.0, 0.0))
                owned_at = [s.owned_at(c.counter) for c in charges] if reserve_pico else []
                for at, value in zip(charge_at, values, strict=True):
                    assert value is not None  # an absent charge refuses
                    s.put_charge(at, value + reserve_pico)
                for at in owned_at:
                    s.reserve(at, reserve_pico)
                for at, bucket, available in zip(bucket_at, buckets, tokens, strict=True):
                    s.put_tokens(at, bucket, available - bucket.cost)
                for at, slot in zip(slot_at, slots, strict=True):
                    s.hold(at, slot, request_id)
            return admission

        return await self._run(run)

    async def settle(self, request_id: str, charges: Sequence[Charge], reserved_pico: int, actual_pico: int,
                     buckets: Sequence[Bucket], actual_costs: Sequence[int], slots: Sequence[Slot]) -> list[str]:
        def run(s: _State) -> list[str]:
            bucket_at = [s.bucket_at(b) for b in buckets]
            crossed: list[str] = []
            for charge in charges:
                reserved = s.unreserve(charge.counter, reserved_pico) if reserved_pico else 0
                at = s.charge_at(charge.counter, False)
                value = s.charge(at)
                if value is None:  # expired with its period: nothing left to correct
                    continue
                after, crossing = settle_charge(charge, value, reserved, actual_pico)
                s.put_charge(at, after)
                if crossing:
                    crossed.append(charge.counter)
            for at, bucket, actual in zip(bucket_at, buckets, actual_costs, strict=True):
                s.put_tokens(at, bucket, settle_bucket(bucket, s.tokens(at, bucket), actual))
            for slot in slots:
                s.release(slot, request_id)
            return crossed

        return await self._run(run)

    async def seed(self, counter: str, value_pico: int, ttl_s: int | None) -> None:
        def run(s: _State) -> None:
            at = s.charge_at(counter, True)
            if s.charge(at) is None:  # absent or expired: a live counter is never overwritten
                s.put_charge(at, value_pico, s.now + max(1, ttl_s) if ttl_s is not None else NEVER)

        await self._run(run)

    async def committed(self, counters: Sequence[str]) -> list[int | None]:
        return await self._run(lambda s: [s.charge(s.charge_at(c, False)) for c in counters])

    async def first_time(self, flag: str, ttl_s: int) -> bool:
        return await self._sql.first_time(flag, ttl_s)

    async def cache_get(self, key: str) -> bytes | None:
        return await self._sql.cache_get(key)

    async def cache_set(self, key: str, value: bytes, ttl_s: float) -> None:
        await self._sql.cache_set(key, value, ttl_s)

    # running under the lock

    async def _run(self, op: Callable[[_State], T]) -> T:
        """Runs ``op`` under the lock on the event loop's thread.  Another worker holds the lock for microseconds:
        when it is taken, the loop goes on with other work and tries again, first at once, then backing off up to a
        millisecond.  (Waiting on a helper thread instead cost two thread hops, and every operation of this worker
        queued behind that wait: under 1,000 requests/s, 3% of operations took that path.)"""
        deadline = 0.0  # set on the first refusal: the uncontended path reads no clock
        pause = 0.0
        while True:
            if self._closed:
                raise RuntimeError("the counters are closed")
            if self._lock.try_acquire():
                try:
                    return self._apply(op)
                finally:
                    self._lock.release()
            now = asyncio.get_running_loop().time()
            if not deadline:
                deadline = now + BUSY_TIMEOUT_MS / 1000
            elif now > deadline:
                raise sqlite3.OperationalError("database is locked")  # as a SQLite counter would say
            await asyncio.sleep(pause)
            pause = min(MAX_PAUSE_S, pause * 2 or MIN_PAUSE_S)

    def _apply(self, op: Callable[[_State], T]) -> T:
        now = self._clock()
        if now >= self._next_sweep:
            self._next_sweep = now + SWEEP_INTERVAL_S
            if self._sweeping is None or self._sweeping.done():
                self._sweeping = asyncio.get_running_loop().create_task(self._sweep())
        return op(_State(self, now))

    async def reclaim(self) -> int:
        """Sweeps now (see ``_sweep``); returns what it gave back of dead processes' reservations (pico-USD)."""
        return await self._sweep()

    async def _sweep(self) -> int:
        """Frees expired charges, full buckets, lapsed holders and unheld slots, so the tables keep room (a slot
        whose holders lapsed keeps its count until its next admission recounts it), and gives back to each budget
        what dead processes held reserved on it."""
        reclaimed = 0
        try:
            for table in (self._holders, self._main):
                for first in range(0, table.size, SWEEP_CHUNK):
                    await asyncio.sleep(0)  # requests go between chunks
                    reclaimed += await self._run(functools.partial(_sweep_chunk, table, first))
        except (RuntimeError, sqlite3.OperationalError):  # closed meanwhile, or the lock kept elsewhere: next time
            pass
        return owners.report(reclaimed)


def _sweep_chunk(table: _Table, first: int, s: _State) -> int:
    now = s.now
    reclaimed = 0
    for at, (_, kind, value, x, _, z) in table.records(first, SWEEP_CHUNK):
        if (kind in (CHARGE, HOLDER) and x <= now) or (kind == BUCKET and z <= now) or (kind == SLOT and value <= 0):
            table.delete(at)
        elif kind == OWNED:
            reclaimed += _sweep_owned(s, at)
    return reclaimed


def _sweep_owned(s: _State, at: int) -> int:
    """Deletes a record that holds nothing; gives a dead owner's reservation back to its charge: returns it."""
    _, _, held, packed, namespace, charge_prefix = OWNED_RECORD.unpack_from(s.buf, at)
    if held == 0:
        s.main.delete(at)
        return 0
    if packed == s.owner.packed() or owners.alive(owners.ProcessId.unpack(packed, namespace)) is not False:
        return 0
    charge_at = s.main.find_prefix(charge_prefix)
    value = s.charge(charge_at)
    if value is not None:  # else expired with its period: nothing to give back
        s.put_charge(charge_at, value - held)
    s.main.delete(at)
    return int(held)
