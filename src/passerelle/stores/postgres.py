"""The scale-out store: PostgreSQL through an asyncpg pool, shared by every gateway instance.

Everything lives in one schema (``passerelle`` by default, set as the pool's search_path), created
and migrated by ``PostgresStore.connect``.  The store logic is ``SQLStore``'s, shared with SQLite;
this module supplies transactions: identity and policy writes first lock the version row, so they
run one at a time across instances and bump the version in their own transaction; snapshots read at
REPEATABLE READ so that the version and the rows they return belong together.
"""

from __future__ import annotations

import functools
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import asyncpg  # type: ignore[import-untyped]

from passerelle.stores.migrations import STORE_MIGRATIONS, MigrationSet, check_schema_name
from passerelle.stores.sql_common import Row
from passerelle.stores.sql_store import SQLStore, TxKind


@functools.lru_cache(maxsize=512)
def numbered(sql: str) -> str:
    """``?`` placeholders as PostgreSQL's ``$1, $2, ...`` (the shared SQL has no literal question mark)."""
    counter = iter(range(1, sql.count("?") + 1))
    return re.sub(r"\?", lambda _: f"${next(counter)}", sql)


class PgTx:
    """The statements of one transaction on a pooled connection (``?`` placeholders, as SQLite's)."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    async def fetch(self, sql: str, *args: object) -> list[Row]:
        rows: list[Row] = await self._conn.fetch(numbered(sql), *args)
        return rows

    async def execute(self, sql: str, *args: object) -> None:
        await self._conn.execute(numbered(sql), *args)

    async def executemany(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        # One prepared statement, the rows pipelined: one round trip's worth of latency per batch.
        await self._conn.executemany(numbered(sql), rows)


async def open_pool(dsn: str, schema: str, migrations: MigrationSet, *, min_size: int = 1, max_size: int = 4) -> Any:
    """Create ``schema`` if missing, bring ``migrations``' tables up to date, and open a pool whose
    search_path is that schema: what every PostgreSQL-backed component does at start."""
    check_schema_name(schema)
    conn = await asyncpg.connect(dsn)
    try:
        await migrations.migrate_postgres(conn, schema)
    finally:
        await conn.close()
    return await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size,
                                     server_settings={"search_path": f'"{schema}"'})


class PoolBacked:
    """What every PostgreSQL store shares: its asyncpg pool and schema, plain queries, a ping, closing."""

    def __init__(self, pool: Any, schema: str) -> None:
        self._pool = pool
        self.schema = schema

    async def _query(self, sql: str, *args: object) -> list[Row]:
        rows: list[Row] = await self._pool.fetch(numbered(sql), *args)
        return rows

    async def ping(self) -> None:
        await self._pool.fetchval("SELECT 1")

    async def aclose(self) -> None:
        await self._pool.close()


class PostgresStore(PoolBacked, SQLStore):
    # Whole seconds (trunc), as SQLite's CAST: both backends agree at day boundaries.
    day_sql = "to_char(to_timestamp(trunc(ts)) AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
    month_sql = "to_char(to_timestamp(trunc(ts)) AT TIME ZONE 'UTC', 'YYYY-MM')"

    @classmethod
    async def connect(cls, dsn: str, schema: str = "passerelle", *, min_size: int = 1,
                      max_size: int = 8) -> PostgresStore:
        """Create the schema if missing, apply pending migrations, open the pool."""
        return cls(await open_pool(dsn, schema, STORE_MIGRATIONS, min_size=min_size, max_size=max_size), schema)

    @asynccontextmanager
    async def _transaction(self, kind: TxKind) -> AsyncIterator[PgTx]:
        async with self._pool.acquire() as conn:
            read = kind == "read"
            async with conn.transaction(isolation="repeatable_read" if read else None, readonly=read):
                if kind == "write":
                    await conn.execute("SELECT version FROM store_version WHERE id = 1 FOR UPDATE")
                yield PgTx(conn)

    def _money(self, value: Decimal) -> object:
        return value
