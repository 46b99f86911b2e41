"""The embedded AI Act store: ``aiact.db`` in the data directory (WAL, shared by worker processes).

SQLite calls block, so they run in a worker thread; a thread lock makes each call exclusive and an
asyncio lock each transaction.  Writes take the file's write lock up front (BEGIN IMMEDIATE).
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from pathlib import Path

from passerelle.aiact.migrations import MIGRATIONS
from passerelle.aiact.store import SQLAiActStore
from passerelle.stores.sql_common import Row
from passerelle.stores.sqlite_conn import SQLiteConnection, SQLiteTx


class SQLiteAiActStore(SQLAiActStore):
    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn = SQLiteConnection(path, MIGRATIONS, pragmas=("foreign_keys=ON",))

    def _transaction(self, read: bool = False) -> AbstractAsyncContextManager[SQLiteTx]:
        return self._conn.transaction("BEGIN" if read else "BEGIN IMMEDIATE")

    async def _query(self, sql: str, *args: object) -> list[Row]:
        return await self._conn.query(sql, *args)

    async def aclose(self) -> None:
        await self._conn.aclose()
