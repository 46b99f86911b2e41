"""The scale-out skills store: PostgreSQL through an asyncpg pool, in the store's schema."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from passerelle.skills.migrations import MIGRATIONS
from passerelle.skills.search import SearchDialect
from passerelle.skills.store import SQLSkillStore
from passerelle.stores.postgres import PgTx, PoolBacked, open_pool


class PostgresSkillStore(PoolBacked, SQLSkillStore):
    dialect = SearchDialect("postgres")

    @classmethod
    async def connect(cls, dsn: str, schema: str = "passerelle", *, min_size: int = 1,
                      max_size: int = 4) -> PostgresSkillStore:
        return cls(await open_pool(dsn, schema, MIGRATIONS, min_size=min_size, max_size=max_size), schema)

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[PgTx]:
        async with self._pool.acquire() as conn, conn.transaction():
            yield PgTx(conn)
