"""The machine's real PostgreSQL and Redis, isolated per test: a unique schema, a unique key prefix."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Protocol, TypeVar

import asyncpg
import redis.asyncio as aioredis

POSTGRES_DSN = os.environ.get("PASSERELLE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("PASSERELLE_TEST_REDIS", "redis://127.0.0.1:6379/0")
SQL_BACKENDS = ("sqlite", "postgres")  # the params of a fixture that runs its tests on both


async def drop_schema(schema: str) -> None:
    conn = await asyncpg.connect(POSTGRES_DSN)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


class _Closing(Protocol):
    async def aclose(self) -> None: ...


S = TypeVar("S", bound=_Closing)


@asynccontextmanager
async def sql_backend(kind: str, sqlite: Callable[[], S], postgres: Callable[[str], Awaitable[S]]
                      ) -> AsyncIterator[S]:
    """A store on ``kind`` (one of SQL_BACKENDS): ``sqlite()``, or ``postgres(schema)`` in a schema nobody
    uses; closed afterwards, and the schema dropped."""
    if kind == "sqlite":
        lite = sqlite()
        try:
            yield lite
        finally:
            await lite.aclose()
        return
    schema = f"test_{uuid.uuid4().hex}"
    try:
        pg = await postgres(schema)
        try:
            yield pg
        finally:
            await pg.aclose()
    finally:
        await drop_schema(schema)


@dataclass(frozen=True)
class ScaleOut:
    dsn: str
    schema: str
    redis_url: str
    prefix: str

    def yaml(self) -> str:
        return (f"store: {{backend: postgres, postgres_dsn: '{self.dsn}', postgres_schema: {self.schema}, "
                f"redis_url: '{self.redis_url}', redis_prefix: '{self.prefix}'}}\n")


@asynccontextmanager
async def scale_out() -> AsyncIterator[ScaleOut]:
    """A fresh schema and key prefix, dropped and deleted afterwards."""
    tag = uuid.uuid4().hex[:12]
    backend = ScaleOut(POSTGRES_DSN, f"t_{tag}", REDIS_URL, f"ptest:{tag}:")
    try:
        yield backend
    finally:
        conn = await asyncpg.connect(POSTGRES_DSN)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{backend.schema}" CASCADE')
        finally:
            await conn.close()
        client = aioredis.from_url(REDIS_URL)
        try:
            keys = [key async for key in client.scan_iter(match=backend.prefix + "*", count=1000)]
            if keys:
                await client.delete(*keys)
        finally:
            await client.aclose()
