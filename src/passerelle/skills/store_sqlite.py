"""The embedded skills store: ``skills.db`` in the data directory (WAL, shared by worker processes).
Writes take the file's write lock up front (BEGIN IMMEDIATE); see ``stores.sqlite_conn``."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from pathlib import Path

from passerelle.skills.migrations import MIGRATIONS
from passerelle.skills.search import SearchDialect
from passerelle.skills.store import SQLSkillStore
from passerelle.stores.sql_common import Row
from passerelle.stores.sqlite_conn import SQLiteConnection, SQLiteTx


class SQLiteSkillStore(SQLSkillStore):
    dialect = SearchDialect("sqlite")

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn = SQLiteConnection(path, MIGRATIONS, pragmas=("foreign_keys=ON",))

    def _transaction(self) -> AbstractAsyncContextManager[SQLiteTx]:
        return self._conn.transaction()

    async def _query(self, sql: str, *args: object) -> list[Row]:
        return await self._conn.query(sql, *args)

    async def aclose(self) -> None:
        await self._conn.aclose()
