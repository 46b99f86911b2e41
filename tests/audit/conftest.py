"""The ``audit_store`` fixture runs a test on both backends: ``audit.db`` in a temporary directory, and the
machine's PostgreSQL in a schema of its own (dropped after).  ``Raw`` tampers with the tables the way
someone with direct database access would (triggers bypassed: that is what the chain must catch)."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from passerelle.audit.postgres import PostgresAuditStore
from passerelle.audit.records import AuditEvent
from passerelle.audit.sql_store import SQLAuditStore
from passerelle.audit.sqlite import SQLiteAuditStore
from passerelle.stores.postgres import numbered
from tests.support.backends import POSTGRES_DSN, SQL_BACKENDS, sql_backend

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def event(i: int, **kw: Any) -> AuditEvent:
    fields: dict[str, Any] = {
        "request_id": f"req-{i:05d}", "time": T0 + i, "tenant_id": "acme", "team_id": "acme/dev", "key_id": "key_1",
        "route": "anthropic", "purpose": None, "model": "claude-test", "deployment": "dep-a",
        "upstream_model": "claude-sonnet-4-5", "packs": {"finance": "1.0"},
        "findings": [{"type": "CREDIT_CARD", "direction": "prompt", "action": "redact", "count": 1}],
        "decision": "forwarded", "status": 200, "input_tokens": 12, "output_tokens": 34,
        "prompt_sha256": "a" * 64, "answer_sha256": "b" * 64}
    fields.update(kw)
    return AuditEvent(**fields)


class Raw:
    """Direct SQL on the store's tables, triggers off."""

    def __init__(self, store: SQLAuditStore) -> None:
        self.store = store

    async def execute(self, sql: str, *args: object) -> None:
        if isinstance(self.store, SQLiteAuditStore):
            db = sqlite3.connect(self.store.path, isolation_level=None)
            try:
                db.execute("BEGIN IMMEDIATE")
                for trigger in ("audit_records_no_update", "audit_records_no_delete"):
                    db.execute(f"DROP TRIGGER IF EXISTS {trigger}")
                db.execute(sql, args)
                db.execute("COMMIT")
            finally:
                db.close()
            return
        assert isinstance(self.store, PostgresAuditStore)
        conn = await asyncpg.connect(POSTGRES_DSN, server_settings={"search_path": self.store.schema})
        try:
            async with conn.transaction():
                await conn.execute("ALTER TABLE audit_records DISABLE TRIGGER USER")
                await conn.execute(numbered(sql), *args)
                await conn.execute("ALTER TABLE audit_records ENABLE TRIGGER USER")
        finally:
            await conn.close()

    async def swap(self, a: int, b: int) -> None:
        """Exchange the positions of two records (their seqs)."""
        await self.execute("UPDATE audit_records SET seq = -1 WHERE seq = ?", a)
        await self.execute("UPDATE audit_records SET seq = ? WHERE seq = ?", a, b)
        await self.execute("UPDATE audit_records SET seq = ? WHERE seq = -1", b)


async def open_pg(schema: str) -> PostgresAuditStore:
    return await PostgresAuditStore.connect(POSTGRES_DSN, schema)


@pytest.fixture(params=SQL_BACKENDS)
async def audit_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SQLAuditStore]:
    async with sql_backend(request.param, lambda: SQLiteAuditStore(tmp_path / "audit.db"), open_pg) as opened:
        yield opened
