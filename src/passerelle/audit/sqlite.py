"""The embedded audit store: ``audit.db`` in the data directory, shared by the worker processes of one
machine.  BEGIN IMMEDIATE takes the file's write lock before the head is read, so two processes can
never seal the same seq; ``synchronous=FULL`` makes a commit survive a power cut, not only a crash."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import TypeVar

from passerelle.audit.chain import ChainPoint
from passerelle.audit.migrations import migrate_audit_sqlite
from passerelle.audit.sql_store import Row, SQLAuditStore, Tx

T = TypeVar("T")


class _Tx:
    def __init__(self, store: SQLiteAuditStore) -> None:
        self._store = store

    async def fetch(self, sql: str, *args: object) -> list[Row]:
        return await self._store._call(lambda db: db.execute(sql, args).fetchall())

    async def execute(self, sql: str, *args: object) -> None:
        await self._store._call(lambda db: db.execute(sql, args))

    async def executemany(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        await self._store._call(lambda db: db.executemany(sql, rows))


class SQLiteAuditStore(SQLAuditStore):
    def __init__(self, path: Path, busy_timeout_ms: int = 30_000) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()  # a cancelled coroutine's thread may still be using the connection
        self._tx_lock = asyncio.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        try:
            # Several worker processes append to one file: wait for each other's commits, never fail.
            self._db.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            migrate_audit_sqlite(self._db)
        except BaseException:
            self._db.close()
            raise

    def _locked(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        with self._lock:
            return fn(self._db)

    async def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await asyncio.to_thread(self._locked, fn)

    def _rollback(self, db: sqlite3.Connection) -> None:
        if db.in_transaction:
            db.execute("ROLLBACK")

    @asynccontextmanager
    async def _transaction(self, begin: str) -> AsyncIterator[Tx]:
        async with self._tx_lock:
            await self._call(lambda db: db.execute(begin))
            try:
                yield _Tx(self)
            except BaseException:
                await asyncio.shield(self._call(self._rollback))
                raise
            try:
                await self._call(lambda db: db.execute("COMMIT"))
            except BaseException:
                # A failed COMMIT leaves the transaction open: the next BEGIN would fail forever.
                await asyncio.shield(self._call(self._rollback))
                raise

    def _write(self) -> AbstractAsyncContextManager[Tx]:
        return self._transaction("BEGIN IMMEDIATE")

    def _read(self) -> AbstractAsyncContextManager[Tx]:
        return self._transaction("BEGIN")

    async def _delete_prefix(self, tx: Tx, point: ChainPoint, at: float) -> int:
        await tx.execute("INSERT INTO audit_pruning (id) VALUES (1)")  # lets the no-delete trigger pass
        rows = await tx.fetch("SELECT COUNT(*) FROM audit_records WHERE seq <= ?", point.seq)
        await tx.execute("DELETE FROM audit_records WHERE seq <= ?", point.seq)
        await tx.execute("DELETE FROM audit_pruning")
        removed = int(rows[0][0])
        await tx.execute("INSERT INTO audit_anchors (through_seq, hash, pruned_at, records) VALUES (?, ?, ?, ?)",
                         point.seq, point.hash, at, removed)
        return removed

    async def ping(self) -> None:
        await self._call(lambda db: db.execute("SELECT 1"))

    async def aclose(self) -> None:
        async with self._tx_lock:
            await self._call(lambda db: db.close())
