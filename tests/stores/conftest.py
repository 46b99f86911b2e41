"""The ``store`` fixture runs every test on both backends: SQLite in a temporary directory, and the
machine's PostgreSQL in a schema of its own (dropped after the test)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from passerelle.stores import PostgresStore, SQLiteStore
from passerelle.stores.records import Budget, RateLimit, Scope, Team, Tenant, UsageRecord, VirtualKey
from passerelle.stores.sql_store import SQLStore
from tests.support.backends import POSTGRES_DSN as PG_DSN
from tests.support.backends import SQL_BACKENDS, drop_schema, sql_backend


@pytest.fixture
async def pg_schema() -> AsyncIterator[str]:
    """A schema name nobody uses; whatever a test creates in it is dropped after."""
    schema = f"test_{uuid.uuid4().hex}"
    yield schema
    await drop_schema(schema)


@pytest.fixture(params=SQL_BACKENDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SQLStore]:
    async with sql_backend(request.param, lambda: SQLiteStore(tmp_path / "passerelle.db"),
                           lambda schema: PostgresStore.connect(PG_DSN, schema, max_size=4)) as opened:
        yield opened


async def clear_ledger(store: SQLStore) -> None:
    """Tests that run many examples on one store start each from an empty ledger."""
    await store._query("DELETE FROM usage_ledger")


# -- records ------------------------------------------------------------------------------------------

def tenant(tenant_id: str, **kw: Any) -> Tenant:
    return Tenant(id=tenant_id, name=kw.pop("name", tenant_id.upper()), created_at=1_700_000_000.25, **kw)


def team(team_id: str, **kw: Any) -> Team:
    return Team(id=team_id, tenant_id=team_id.split("/")[0], name=team_id, created_at=1_700_000_001.5, **kw)


def key(key_id: str, tenant_id: str, team_id: str | None = None, **kw: Any) -> VirtualKey:
    secret = f"sk-pass-{key_id}"
    return VirtualKey(id=key_id, key_sha256=hashlib.sha256(secret.encode()).hexdigest(), prefix=secret[:12],
                      name=f"{key_id} name", tenant_id=tenant_id, team_id=team_id, created_at=1_700_000_002.125,
                      **kw)


def budget(budget_id: str, scope: Scope, scope_id: str, limit: str = "10.00", **kw: Any) -> Budget:
    return Budget(id=budget_id, scope=scope, scope_id=scope_id, period="month", limit_usd=Decimal(limit),
                  created_at=1_700_000_003.0, **kw)


def rate_limit(limit_id: str, scope: Scope, scope_id: str, **kw: Any) -> RateLimit:
    kw.setdefault("rpm", 60)
    return RateLimit(id=limit_id, scope=scope, scope_id=scope_id, created_at=1_700_000_004.0, **kw)


def usage(request_id: str, ts: float, tenant_id: str = "acme", **kw: Any) -> UsageRecord:
    fields: dict[str, Any] = {"team_id": None, "key_id": "key_1", "route": "openai.chat", "model": "gpt-test",
                                 "deployment": "dep-a", "provider": "openai", "upstream_model": "gpt-4o",
                                 "status": 200, "latency_ms": 12.5}
    fields.update(kw)
    return UsageRecord(request_id=request_id, ts=ts, tenant_id=tenant_id, **fields)
