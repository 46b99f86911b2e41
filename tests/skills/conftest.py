"""The ``skill_store`` fixture runs a test on both backends: SQLite in a temporary directory and the
machine's PostgreSQL in a schema of its own (dropped after the test)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from passerelle.skills.archive import FileSet
from passerelle.skills.registry import SkillRegistry, SkillsPolicy
from passerelle.skills.store import SQLSkillStore
from passerelle.skills.store_postgres import PostgresSkillStore
from passerelle.skills.store_sqlite import SQLiteSkillStore
from tests.support.backends import POSTGRES_DSN as PG_DSN
from tests.support.backends import SQL_BACKENDS, sql_backend


@pytest.fixture(params=SQL_BACKENDS)
async def skill_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SQLSkillStore]:
    async with sql_backend(request.param, lambda: SQLiteSkillStore(tmp_path / "skills.db"),
                           lambda schema: PostgresSkillStore.connect(PG_DSN, schema, max_size=2)) as opened:
        yield opened


@pytest.fixture
def registry(skill_store: SQLSkillStore) -> SkillRegistry:
    return SkillRegistry(skill_store, SkillsPolicy())


def skill_files(name: str, description: str = "Does a thing. Use when asked.", body: str = "# Steps\n",
                extra: dict[str, bytes] | None = None, frontmatter: str = "") -> FileSet:
    text = f"---\nname: {name}\ndescription: {description}\n{frontmatter}---\n{body}"
    return FileSet(name, {"SKILL.md": text.encode(), **(extra or {})})


class Principal:
    """What the gateway's principal offers the registry."""

    def __init__(self, tenant_id: str, team_id: str | None = None, key_id: str = "key_1") -> None:
        self.tenant_id, self.team_id, self.key_id = tenant_id, team_id, key_id
