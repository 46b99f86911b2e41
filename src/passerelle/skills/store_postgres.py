"""The scale-out skills store: PostgreSQL through an asyncpg pool, in the store's schema."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg  # type: ignore[import-untyped]

from passerelle.skills.migrations import migrate_skills_postgres
from passerelle.skills.search import SearchDialect
from passerelle.skills.store import SQLSkillStore
from passerelle.stores.migrations import check_schema_name
from passerelle.stores.postgres import _Conn, numbered
from passerelle.stores.sql_common import Row


class PostgresSkillStore(SQLSkillStore):
    dialect = SearchDialect("postgres")

    def __init__(self, pool: Any, schema: str) -> None:
        self._pool = pool
        self.schema = schema

    @classmethod
    async def connect(cls, dsn: str, schema: str = "passerelle", *, min_size: int = 1,
                      max_size: int = 4) -> PostgresSkillStore:
        check_schema_name(schema)
        conn = await asyncpg.connect(dsn)
        try:
            await migrate_skills_postgres(conn, schema)
        finally:
            await conn.close()
        pool = await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size,
                                         server_settings={"search_path": f'"{schema}"'})
        return cls(pool, schema)

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[_Conn]:
        async with self._pool.acquire() as conn, conn.transaction():
            yield _Conn(conn)

    async def _query(self, sql: str, *args: object) -> list[Row]:
        rows: list[Row] = await self._pool.fetch(numbered(sql), *args)
        return rows

    async def aclose(self) -> None:
        await self._pool.close()
