"""The scale-out AI Act store: PostgreSQL through an asyncpg pool, in the store's schema.  Writes lock
the ``aiact_version`` row first (they bump it), so they run one at a time across instances; snapshots
read at REPEATABLE READ so that the version and the rows agree."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from passerelle.aiact.migrations import MIGRATIONS
from passerelle.aiact.store import SQLAiActStore
from passerelle.stores.postgres import PgTx, PoolBacked, open_pool


class PostgresAiActStore(PoolBacked, SQLAiActStore):
    @classmethod
    async def connect(cls, dsn: str, schema: str = "passerelle", *, min_size: int = 1,
                      max_size: int = 4) -> PostgresAiActStore:
        return cls(await open_pool(dsn, schema, MIGRATIONS, min_size=min_size, max_size=max_size), schema)

    @asynccontextmanager
    async def _transaction(self, read: bool = False) -> AsyncIterator[PgTx]:
        async with self._pool.acquire() as conn, conn.transaction(
                isolation="repeatable_read" if read else None, readonly=read):
            yield PgTx(conn)
