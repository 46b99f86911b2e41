"""The embedded store: one SQLite file under the data directory (one gateway instance; the CLI may
open the same file from another process: WAL and a busy timeout let them take turns).

SQLite calls block, so they run in a worker thread and never on the event loop.  One connection
serves the store: a thread lock makes each call exclusive, an asyncio lock makes each transaction
exclusive among coroutines.  The store logic itself is ``SQLStore``'s, shared with PostgreSQL.
"""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import TypeVar

from passerelle.stores.migrations import migrate_sqlite
from passerelle.stores.sql_common import Row
from passerelle.stores.sql_store import SQLStore, TxKind
from passerelle.stores.sqlite_conn import connect_shared

T = TypeVar("T")


class _Tx:
    """The connection as seen by one transaction: refuses to run once that transaction is over."""

    def __init__(self, store: SQLiteStore, token: int) -> None:
        self._store = store
        self._token = token

    async def fetch(self, sql: str, *args: object) -> list[Row]:
        return await asyncio.to_thread(self._store._call, self._token, lambda db: db.execute(sql, args).fetchall())

    async def execute(self, sql: str, *args: object) -> None:
        await asyncio.to_thread(self._store._call, self._token, lambda db: db.execute(sql, args))

    async def executemany(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        await asyncio.to_thread(self._store._call, self._token, lambda db: db.executemany(sql, rows))


class SQLiteStore(SQLStore):
    # Whole seconds (CAST truncates), as PostgreSQL's trunc(): both backends agree at day boundaries.
    day_sql = "strftime('%Y-%m-%d', CAST(ts AS INTEGER), 'unixepoch')"
    month_sql = "strftime('%Y-%m', CAST(ts AS INTEGER), 'unixepoch')"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._tx_lock = asyncio.Lock()
        self._tokens = itertools.count(1)
        self._open: int | None = None  # the token of the transaction in progress
        # Worker processes of one machine open the same file: they take turns, then wait for each other's locks.
        self._db = connect_shared(path, 5000, ["foreign_keys=ON"], migrate_sqlite)

    # synchronous access for the CLI, before any event loop runs
    def _run(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def get_setting_sync(self, name: str) -> str | None:
        rows = self._run("SELECT value FROM settings WHERE name = ?", (name,))
        return str(rows[0][0]) if rows else None

    def set_setting_sync(self, name: str, value: str) -> None:
        self._run("INSERT INTO settings(name, value) VALUES (?, ?) "
                  "ON CONFLICT(name) DO UPDATE SET value = excluded.value", (name, value))

    # the worker-thread side
    def _call(self, token: int | None, fn: Callable[[sqlite3.Connection], T]) -> T:
        with self._lock:
            if token is None:
                self._abandon()
            elif token != self._open:
                raise sqlite3.OperationalError("the transaction is over")
            return fn(self._db)

    def _abandon(self) -> None:
        # A transaction whose coroutine was cancelled before its rollback ran: it can no longer commit.
        if self._open is not None:
            self._open = None
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")

    def _begin(self, token: int, kind: TxKind) -> None:
        with self._lock:
            self._abandon()
            # IMMEDIATE takes the write lock now: a read that later writes cannot deadlock another process.
            self._db.execute("BEGIN" if kind == "read" else "BEGIN IMMEDIATE")
            self._open = token

    def _end(self, token: int, commit: bool) -> None:
        with self._lock:
            if self._open != token:
                return
            self._open = None
            try:
                if commit:
                    self._db.execute("COMMIT")
            finally:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")

    # SQLStore
    @asynccontextmanager
    async def _transaction(self, kind: TxKind) -> AsyncIterator[_Tx]:
        async with self._tx_lock:
            token = next(self._tokens)
            await asyncio.to_thread(self._begin, token, kind)
            try:
                yield _Tx(self, token)
            except BaseException:
                await asyncio.to_thread(self._end, token, False)
                raise
            await asyncio.to_thread(self._end, token, True)

    async def _query(self, sql: str, *args: object) -> list[Row]:
        async with self._tx_lock:
            return await asyncio.to_thread(self._call, None, lambda db: db.execute(sql, args).fetchall())

    def _money(self, value: Decimal) -> object:
        return str(value)

    async def ping(self) -> None:
        await self._query("SELECT 1")

    async def aclose(self) -> None:
        async with self._tx_lock:
            await asyncio.to_thread(self._close)

    def _close(self) -> None:
        with self._lock:
            self._db.close()
