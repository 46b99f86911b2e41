"""The ``aiact_store`` fixture runs a test on both backends: SQLite in a temporary directory and the
machine's PostgreSQL in a schema of its own (dropped after the test)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from passerelle.aiact.records import Purpose
from passerelle.aiact.registry import AiActRegistry
from passerelle.aiact.store import SQLAiActStore
from passerelle.aiact.store_postgres import PostgresAiActStore
from passerelle.aiact.store_sqlite import SQLiteAiActStore
from tests.support.backends import POSTGRES_DSN as PG_DSN
from tests.support.backends import SQL_BACKENDS, sql_backend


@pytest.fixture(params=SQL_BACKENDS)
async def aiact_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SQLAiActStore]:
    async with sql_backend(request.param, lambda: SQLiteAiActStore(tmp_path / "aiact.db"),
                           lambda schema: PostgresAiActStore.connect(PG_DSN, schema, max_size=2)) as opened:
        yield opened


@pytest.fixture
def registry(aiact_store: SQLAiActStore) -> AiActRegistry:
    return AiActRegistry(aiact_store)


def credit_scoring(**changes: object) -> Purpose:
    """A sample high-risk purpose: creditworthiness assessment (Annex III 5(b))."""
    fields: dict[str, object] = dict(
        id="credit-scoring", name="Credit scoring assistant",
        description="Summarises applicants' files for credit officers; never decides alone.",
        instructions="Use only on complete files; a credit officer reviews every summary.",
        overseer="Marie Curie (credit risk)", owner="alice@bank.example", risk_class="high-risk",
        annex_category="5(b)", models=("claude-test", "gpt-*"), routes=("messages", "chat_completions"),
        retention_days=400, status="active", tags=("credit",))
    fields.update(changes)
    return Purpose(**fields)  # type: ignore[arg-type]
