"""The two mechanics behind ``SQLiteCounters``' group commit: the rows of one batch, and the file lock.

``Batch`` holds the counter rows one transaction's operations touch: each table is read with one SELECT,
each operation then reads and changes them in memory, in submission order, and the changed rows are written
back once before the COMMIT.  Every change is logged, so an operation that raises is undone on its own.

``FileLock`` orders the processes' write transactions.  The kernel hands it to a waiting process the moment
its holder lets go, where SQLite's busy handler polls, sleeping 1, 2, 5, 10... ms between tries: with two
busy processes one of them then starved for seconds at p99 (measured).  ``BEGIN IMMEDIATE`` still follows it,
so a writer that does not take it (the ``sqlite3`` shell) stays safe.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from passerelle.stores.base import Bucket
from passerelle.stores.counters_memory import bucket_tokens, seconds_to_fill

if sys.platform != "win32":
    import fcntl

T = TypeVar("T")
_MISSING: Any = object()


def marks(n: int) -> str:
    return ",".join("?" * n)


# Each operation's values are checked as it makes them, the way SQLite's STRICT columns check them at the
# write-back: else an invalid one would fail the whole batch there, or two could cancel out unnoticed
# (0.5 + 0.5 makes an integer), where one at a time each fails.

def _integer(value: Any) -> int:
    if isinstance(value, int):
        if -(2**63) <= value < 2**63:
            return value
        raise OverflowError("Python int too large to convert to SQLite INTEGER")
    if isinstance(value, float) and value.is_integer() and -(2**63) <= value < 2**63:
        return int(value)  # what SQLite stores for it
    raise sqlite3.IntegrityError(f"cannot store {type(value).__name__} value in INTEGER column charges.value")


def _real(value: float, column: str) -> float:
    if value != value:  # NaN: SQLite stores NULL
        raise sqlite3.IntegrityError(f"NOT NULL constraint failed: {column}")
    return value


class Batch:
    def __init__(self, db: sqlite3.Connection, now: float) -> None:
        self.db, self.now = db, now
        self.charges: dict[str, tuple[int, float | None] | None] = {}  # (value, expiry); None: absent
        self.buckets: dict[str, tuple[float, float] | None] = {}  # (tokens, ts); None: absent, i.e. full
        self.full_at: dict[str, float] = {}
        self.slots: dict[str, dict[str, float]] = {}  # counter -> request id -> lease expiry
        self._read_slots: dict[str, dict[str, float]] = {}  # as read, to write back only the differences
        self._dirty_charges: set[str] = set()
        self._dirty_buckets: set[str] = set()
        self._log: list[tuple[dict[str, Any], str, Any]] = []  # (mapping, key, previous value or _MISSING)

    def read(self, charges: Iterable[str], buckets: Iterable[str], slots: Iterable[str]) -> None:
        """Reads the rows not read yet: one SELECT per table."""
        names = list({c for c in charges if c not in self.charges})
        if names:
            self.charges.update(dict.fromkeys(names))
            for counter, value, expiry in self._select("counter, value, expiry FROM charges", names):
                if expiry is None or expiry > self.now:
                    self.charges[counter] = (value, expiry)
                else:
                    self._dirty_charges.add(counter)  # expired: the write-back deletes it
        names = list({b for b in buckets if b not in self.buckets})
        if names:
            self.buckets.update(dict.fromkeys(names))
            for counter, tokens, ts, full_at in self._select("counter, tokens, ts, full_at FROM buckets", names):
                self.buckets[counter], self.full_at[counter] = (tokens, ts), full_at  # as read: what an undo restores
        names = list({s for s in slots if s not in self.slots})
        if names:
            holders: dict[str, dict[str, float]] = {name: {} for name in names}
            for counter, request_id, expiry in self._select("counter, request_id, lease_expiry FROM slots", names):
                holders[counter][request_id] = expiry
            self.slots.update(holders)
            self._read_slots.update((name, dict(holding)) for name, holding in holders.items())

    def _select(self, what: str, names: list[str]) -> list[Any]:
        return self.db.execute(f"SELECT {what} WHERE counter IN ({marks(len(names))})", names).fetchall()

    def charge(self, counter: str) -> int | None:
        if counter not in self.charges:
            self.read((counter,), (), ())
        entry = self.charges[counter]
        return None if entry is None else entry[0]

    def put_charge(self, counter: str, value: int, expiry: Any = _MISSING) -> None:
        """Sets a charge's value, keeping its expiry unless one is given."""
        value = _integer(value)
        if expiry is _MISSING:
            entry = self.charges[counter]
            expiry = None if entry is None else entry[1]
        self._set(self.charges, counter, (value, expiry))
        self._dirty_charges.add(counter)

    def tokens(self, bucket: Bucket) -> float:
        if bucket.counter not in self.buckets:
            self.read((), (bucket.counter,), ())
        return bucket_tokens(self.buckets[bucket.counter], bucket, self.now)

    def put_tokens(self, bucket: Bucket, tokens: float) -> None:
        # full_at lets the sweep drop full buckets: a bucket that is absent is full.
        full_at = _real(self.now + seconds_to_fill(bucket, tokens), "buckets.full_at")
        self._set(self.buckets, bucket.counter, (_real(tokens, "buckets.tokens"), self.now))
        self._set(self.full_at, bucket.counter, full_at)
        self._dirty_buckets.add(bucket.counter)

    def holders(self, counter: str) -> dict[str, float]:
        """The live leases of a slot; those of crashed requests lapse (and are deleted)."""
        if counter not in self.slots:
            self.read((), (), (counter,))
        holding = self.slots[counter]
        for request_id in [rid for rid, expiry in holding.items() if expiry <= self.now]:
            self._set(holding, request_id, _MISSING)
        return holding

    def hold(self, counter: str, request_id: str, expiry: float) -> None:
        self._set(self.slots[counter], request_id, _real(expiry, "slots.lease_expiry"))  # read by ``holders`` first

    def release(self, counter: str, request_id: str) -> None:
        if counter not in self.slots:
            self.read((), (), (counter,))
        if request_id in self.slots[counter]:
            self._set(self.slots[counter], request_id, _MISSING)

    def _set(self, mapping: dict[str, Any], key: str, value: Any) -> None:
        self._log.append((mapping, key, mapping.get(key, _MISSING)))
        if value is _MISSING:
            del mapping[key]
        else:
            mapping[key] = value

    def mark(self) -> int:
        return len(self._log)

    def undo(self, mark: int) -> None:
        """Restores what changed since ``mark``, latest first."""
        while len(self._log) > mark:
            mapping, key, previous = self._log.pop()
            if previous is _MISSING:
                mapping.pop(key, None)
            else:
                mapping[key] = previous

    def write(self) -> None:
        """Writes the changed rows (an undone change writes its row back as it was: harmless)."""
        gone = [(c,) for c in self._dirty_charges if self.charges[c] is None]
        kept = [(c, *entry) for c in self._dirty_charges if (entry := self.charges[c]) is not None]
        buckets = [(c, *state, self.full_at[c]) for c in self._dirty_buckets if (state := self.buckets[c]) is not None]
        released = [(c, rid) for c, read in self._read_slots.items() for rid in read if rid not in self.slots[c]]
        held = [(c, rid, expiry) for c, read in self._read_slots.items() for rid, expiry in self.slots[c].items()
                if read.get(rid) != expiry]
        for sql, rows in (("DELETE FROM charges WHERE counter = ?", gone),
                          ("INSERT OR REPLACE INTO charges VALUES (?, ?, ?)", kept),
                          ("INSERT OR REPLACE INTO buckets VALUES (?, ?, ?, ?)", buckets),
                          ("DELETE FROM slots WHERE counter = ? AND request_id = ?", released),
                          ("INSERT OR REPLACE INTO slots VALUES (?, ?, ?)", held)):
            if rows:
                self.db.executemany(sql, rows)

    def statements(self, fn: Callable[[sqlite3.Connection, float], T]) -> T:
        """Runs an operation's own statements (on tables the batch does not hold) in a savepoint of its own."""
        self.db.execute("SAVEPOINT op")
        try:
            return fn(self.db, self.now)
        except BaseException:
            self.db.execute("ROLLBACK TO op")
            raise
        finally:
            self.db.execute("RELEASE op")


class FileLock:
    """``flock`` on a file next to the database, with a timeout: a wait that would block runs on a helper thread
    (the requester waits on it for at most ``timeout``; if it gave up, the helper lets go as soon as it gets
    the lock).  Does nothing on Windows, where SQLite's own locking then works alone."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._fd = -1
        self._cond = threading.Condition()
        self._asked = False  # the helper is to block on the lock, or is blocked on it
        self._wanted = False  # a requester waits for the helper
        self._granted = False  # the helper took the lock for that requester
        self._closed = False
        self._helper: threading.Thread | None = None

    def acquire(self, timeout: float) -> None:
        """Takes the lock, or raises ``sqlite3.OperationalError`` after ``timeout`` seconds as SQLite would."""
        if sys.platform == "win32":
            return
        with self._cond:
            if self._fd < 0:
                self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
            if not self._asked:  # else a helper left over from a timeout is still blocked: wait for it
                try:
                    fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return
                except BlockingIOError:
                    pass
                self._asked = True
                if self._helper is None:
                    self._helper = threading.Thread(target=self._wait, name="passerelle-counters-lock", daemon=True)
                    self._helper.start()
                self._cond.notify_all()
            self._wanted = True
            granted = self._cond.wait_for(lambda: self._granted, timeout)
            self._wanted = self._granted = False
        if not granted:
            raise sqlite3.OperationalError("database is locked")

    def try_acquire(self) -> bool:
        """Takes the lock if nobody holds it or waits for it; never waits."""
        if sys.platform == "win32":
            return True
        with self._cond:
            if self._asked or self._fd < 0:  # a helper is blocked on it (or it was never opened)
                return False
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            return True

    def release(self) -> None:
        if sys.platform != "win32":
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            if not self._asked and self._fd >= 0:  # else the helper, blocked on it, closes it when it returns
                os.close(self._fd)
                self._fd = -1

    def _wait(self) -> None:
        """The helper thread: blocks on the lock when asked, then hands it over, or lets go if nobody waits."""
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._asked or self._closed)
                if not self._asked:
                    return
                fd = self._fd
            fcntl.flock(fd, fcntl.LOCK_EX)
            with self._cond:
                self._asked = False
                if self._wanted and not self._closed:
                    self._granted = True
                    self._cond.notify_all()
                    continue
                fcntl.flock(fd, fcntl.LOCK_UN)
                if self._closed:
                    os.close(fd)
                    self._fd = -1
                    return
