"""The scale-out audit store: PostgreSQL, shared by every instance.  An appender locks the one row of
``audit_chain_lock`` (FOR UPDATE) before it reads the head, so appenders of all instances take turns
and each batch gets the next seqs, gapless."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from passerelle.audit.chain import ChainPoint
from passerelle.audit.migrations import MIGRATIONS
from passerelle.audit.sql_store import SQLAuditStore, Tx
from passerelle.stores.postgres import PgTx, PoolBacked, open_pool


class PostgresAuditStore(PoolBacked, SQLAuditStore):
    @classmethod
    async def connect(cls, dsn: str, schema: str = "passerelle", *, max_size: int = 2) -> PostgresAuditStore:
        return cls(await open_pool(dsn, schema, MIGRATIONS, min_size=1, max_size=max_size), schema)

    @asynccontextmanager
    async def _write_tx(self) -> AsyncIterator[Tx]:
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT id FROM audit_chain_lock WHERE id = 1 FOR UPDATE")
            yield PgTx(conn)

    @asynccontextmanager
    async def _read_tx(self) -> AsyncIterator[Tx]:
        async with self._pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            yield PgTx(conn)

    def _write(self) -> AbstractAsyncContextManager[Tx]:
        return self._write_tx()

    def _read(self) -> AbstractAsyncContextManager[Tx]:
        return self._read_tx()

    async def _delete_prefix(self, tx: Tx, point: ChainPoint, at: float) -> int:
        rows = await tx.fetch("SELECT audit_prune(?, ?, ?)", point.seq, point.hash, at)
        return int(rows[0][0])
