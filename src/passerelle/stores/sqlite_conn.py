"""One SQLite connection used from asyncio: the embedded backend of the components that keep their own
file (audit log, skills registry, AI Act registers).

SQLite calls block, so each runs in a worker thread; a thread lock makes each call exclusive (a cancelled
coroutine's thread may still be using the connection) and an asyncio lock each transaction.  A failed or
cancelled transaction is rolled back, shielded, so the connection is never left inside one (the next
BEGIN would fail forever).
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar

from passerelle.stores.counters_sqlite_batch import FileLock
from passerelle.stores.migrations import MigrationSet
from passerelle.stores.sql_common import Row

T = TypeVar("T")


class SQLiteTx:
    """The statements of one transaction (``?`` placeholders)."""

    def __init__(self, conn: SQLiteConnection) -> None:
        self._conn = conn

    async def fetch(self, sql: str, *args: object) -> list[Row]:
        return await self._conn.call(lambda db: db.execute(sql, args).fetchall())

    async def execute(self, sql: str, *args: object) -> None:
        await self._conn.call(lambda db: db.execute(sql, args))

    async def executemany(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        await self._conn.call(lambda db: db.executemany(sql, rows))


def connect_shared(path: Path, busy_timeout_ms: int, pragmas: Sequence[str],
                   migrate: Callable[[sqlite3.Connection], object]) -> sqlite3.Connection:
    """A connection to a file the worker processes of one machine share, in WAL mode and migrated.  The opens
    take turns under a file lock: switching a fresh file to WAL fails at once ("database is locked", no busy
    wait) while another process creates the schema, as simultaneous starts showed under load."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(path.with_name(path.name + ".open.lock"))
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    try:
        lock.acquire(busy_timeout_ms / 1000)
        try:
            db.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")  # processes wait for each other's writes
            db.execute("PRAGMA journal_mode=WAL")
            for pragma in pragmas:
                db.execute(f"PRAGMA {pragma}")
            migrate(db)
        finally:
            lock.release()
            lock.close()
    except BaseException:
        db.close()
        raise
    return db


class SQLiteConnection:
    def __init__(self, path: Path, migrations: MigrationSet, *, pragmas: Sequence[str] = (),
                 busy_timeout_ms: int = 10_000) -> None:
        """Opens ``path`` in WAL mode (shared by the worker processes of one machine), applies ``pragmas``
        (e.g. ``synchronous=FULL``) and brings ``migrations`` up to date."""
        self.path = path
        self._lock = threading.Lock()
        self._tx_lock = asyncio.Lock()
        self._db = connect_shared(path, busy_timeout_ms, pragmas, migrations.migrate_sqlite)

    def _locked(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        with self._lock:
            return fn(self._db)

    async def call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await asyncio.to_thread(self._locked, fn)

    @staticmethod
    def _rollback(db: sqlite3.Connection) -> None:
        if db.in_transaction:
            db.execute("ROLLBACK")

    @asynccontextmanager
    async def transaction(self, begin: str = "BEGIN IMMEDIATE") -> AsyncIterator[SQLiteTx]:
        """``BEGIN IMMEDIATE`` (the default) takes the file's write lock up front; ``BEGIN`` reads a snapshot."""
        async with self._tx_lock:
            await self.call(lambda db: db.execute(begin))
            try:
                yield SQLiteTx(self)
            except BaseException:
                await asyncio.shield(self.call(self._rollback))
                raise
            try:
                await self.call(lambda db: db.execute("COMMIT"))
            except BaseException:
                await asyncio.shield(self.call(self._rollback))
                raise

    async def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """``fn`` inside one ``BEGIN IMMEDIATE`` ... ``COMMIT`` (rolled back if it raises), in a single trip to
        the worker thread: for a batch written whole, where ``transaction`` takes a trip per statement."""
        async with self._tx_lock:
            return await self.call(functools.partial(self._write_sync, fn))

    @staticmethod
    def _write_sync(fn: Callable[[sqlite3.Connection], T], db: sqlite3.Connection) -> T:
        db.execute("BEGIN IMMEDIATE")
        try:
            result = fn(db)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        return result

    async def query(self, sql: str, *args: object) -> list[Row]:
        """One statement outside any transaction of this connection."""
        async with self._tx_lock:
            return await self.call(lambda db: db.execute(sql, args).fetchall())

    async def aclose(self) -> None:
        async with self._tx_lock:
            await self.call(lambda db: db.close())
