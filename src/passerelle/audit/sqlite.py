"""The embedded audit store: ``audit.db`` in the data directory, shared by the worker processes of one
machine.  BEGIN IMMEDIATE takes the file's write lock before the head is read, so two processes can
never seal the same seq; ``synchronous=FULL`` makes a commit survive a power cut, not only a crash."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path

from passerelle.audit.chain import GENESIS, ChainPoint
from passerelle.audit.migrations import MIGRATIONS
from passerelle.audit.records import AuditRecord, Unsealed
from passerelle.audit.sql_store import (
    ANCHOR_SQL,
    HEAD_SQL,
    INSERT_SQL,
    SQLAuditStore,
    Tx,
    point_from_rows,
    record_params,
    seal_batch,
)
from passerelle.stores.sqlite_conn import SQLiteConnection


class SQLiteAuditStore(SQLAuditStore):
    def __init__(self, path: Path, busy_timeout_ms: int = 30_000) -> None:
        self.path = path
        # synchronous=FULL: a committed record survives a power cut, not only a crash.
        self._conn = SQLiteConnection(path, MIGRATIONS, pragmas=("synchronous=FULL",), busy_timeout_ms=busy_timeout_ms)

    def _write(self) -> AbstractAsyncContextManager[Tx]:
        return self._conn.transaction("BEGIN IMMEDIATE")

    def _read(self) -> AbstractAsyncContextManager[Tx]:
        return self._conn.transaction("BEGIN")

    async def append(self, batch: Sequence[Unsealed]) -> list[AuditRecord]:
        """Head, seal, insert and commit in one trip to the connection's thread (the generic path takes four,
        and seals on the event loop)."""
        if not batch:
            return []
        return await self._conn.write(lambda db: _append(db, batch))

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
        await self._conn.query("SELECT 1")

    async def aclose(self) -> None:
        await self._conn.aclose()


def _append(db: sqlite3.Connection, batch: Sequence[Unsealed]) -> list[AuditRecord]:
    head = point_from_rows(db.execute(HEAD_SQL).fetchall()) or point_from_rows(db.execute(ANCHOR_SQL).fetchall())
    sealed = seal_batch(batch, head or GENESIS)
    db.executemany(INSERT_SQL, [record_params(r) for r in sealed])
    return sealed
