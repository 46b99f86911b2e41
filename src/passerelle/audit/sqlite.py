"""The embedded audit store: ``audit.db`` in the data directory, shared by the worker processes of one
machine.  BEGIN IMMEDIATE takes the file's write lock before the head is read, so two processes can
never seal the same seq; ``synchronous=FULL`` makes a commit survive a power cut, not only a crash."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from pathlib import Path

from passerelle.audit.chain import ChainPoint
from passerelle.audit.migrations import MIGRATIONS
from passerelle.audit.sql_store import SQLAuditStore, Tx
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
