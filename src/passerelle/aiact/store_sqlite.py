"""The embedded AI Act store: ``aiact.db`` in the data directory (WAL, shared by worker processes).

SQLite calls block, so they run in a worker thread; a thread lock makes each call exclusive and an
asyncio lock each transaction.  Writes take the file's write lock up front (BEGIN IMMEDIATE).
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar

from passerelle.aiact.migrations import migrate_aiact_sqlite
from passerelle.aiact.store import SQLAiActStore
from passerelle.stores.sql_common import Row

T = TypeVar("T")


class _Tx:
    def __init__(self, store: SQLiteAiActStore) -> None:
        self._store = store

    async def fetch(self, sql: str, *args: object) -> list[Row]:
        return await self._store._call(lambda db: db.execute(sql, args).fetchall())

    async def execute(self, sql: str, *args: object) -> None:
        await self._store._call(lambda db: db.execute(sql, args))

    async def executemany(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        await self._store._call(lambda db: db.executemany(sql, rows))


class SQLiteAiActStore(SQLAiActStore):
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._tx_lock = asyncio.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        try:
            self._db.execute("PRAGMA busy_timeout=10000")
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            migrate_aiact_sqlite(self._db)
        except BaseException:
            self._db.close()
            raise

    def _locked(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        with self._lock:
            return fn(self._db)

    async def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await asyncio.to_thread(self._locked, fn)

    def _finish(self, db: sqlite3.Connection, commit: bool) -> None:
        if db.in_transaction:
            db.execute("COMMIT" if commit else "ROLLBACK")

    @asynccontextmanager
    async def _transaction(self, read: bool = False) -> AsyncIterator[_Tx]:
        async with self._tx_lock:
            await self._call(lambda db: db.execute("BEGIN" if read else "BEGIN IMMEDIATE"))
            try:
                yield _Tx(self)
            except BaseException:
                # Shielded: a cancelled caller must not leave the connection inside a transaction.
                await asyncio.shield(self._call(lambda db: self._finish(db, False)))
                raise
            await asyncio.shield(self._call(lambda db: self._finish(db, True)))

    async def _query(self, sql: str, *args: object) -> list[Row]:
        async with self._tx_lock:
            return await self._call(lambda db: db.execute(sql, args).fetchall())

    async def aclose(self) -> None:
        async with self._tx_lock:
            await self._call(lambda db: db.close())
