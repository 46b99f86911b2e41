"""The scale-out audit store: PostgreSQL, shared by every instance.  An appender locks the one row of
``audit_chain_lock`` (FOR UPDATE) before it reads the head, so appenders of all instances take turns
and each batch gets the next seqs, gapless."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import asyncpg  # type: ignore[import-untyped]

from passerelle.audit.chain import ChainPoint
from passerelle.audit.migrations import migrate_audit_postgres
from passerelle.audit.sql_store import Row, SQLAuditStore, Tx
from passerelle.stores.migrations import check_schema_name
from passerelle.stores.postgres import numbered


class _Conn:
    def __init__(self, conn: Any) -> None:
        self._conn = conn

    async def fetch(self, sql: str, *args: object) -> list[Row]:
        rows: list[Row] = await self._conn.fetch(numbered(sql), *args)
        return rows

    async def execute(self, sql: str, *args: object) -> None:
        await self._conn.execute(numbered(sql), *args)

    async def executemany(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        await self._conn.executemany(numbered(sql), rows)


class PostgresAuditStore(SQLAuditStore):
    def __init__(self, pool: Any, schema: str) -> None:
        self._pool = pool
        self.schema = schema

    @classmethod
    async def connect(cls, dsn: str, schema: str = "passerelle", *, max_size: int = 2) -> PostgresAuditStore:
        check_schema_name(schema)
        conn = await asyncpg.connect(dsn)
        try:
            await migrate_audit_postgres(conn, schema)
        finally:
            await conn.close()
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=max_size,
                                         server_settings={"search_path": f'"{schema}"'})
        return cls(pool, schema)

    @asynccontextmanager
    async def _write_tx(self) -> AsyncIterator[Tx]:
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT id FROM audit_chain_lock WHERE id = 1 FOR UPDATE")
            yield _Conn(conn)

    @asynccontextmanager
    async def _read_tx(self) -> AsyncIterator[Tx]:
        async with self._pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            yield _Conn(conn)

    def _write(self) -> AbstractAsyncContextManager[Tx]:
        return self._write_tx()

    def _read(self) -> AbstractAsyncContextManager[Tx]:
        return self._read_tx()

    async def _delete_prefix(self, tx: Tx, point: ChainPoint, at: float) -> int:
        rows = await tx.fetch("SELECT audit_prune(?, ?, ?)", point.seq, point.hash, at)
        return int(rows[0][0])

    async def ping(self) -> None:
        await self._pool.fetchval("SELECT 1")

    async def aclose(self) -> None:
        await self._pool.close()
