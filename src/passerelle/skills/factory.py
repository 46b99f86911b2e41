"""Open the skills registry on the configured backend: ``skills.db`` in the data directory, or the
store's PostgreSQL schema.  Drivers are imported lazily, as stores/factory.py does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from passerelle.config import Config
from passerelle.skills.registry import SkillRegistry, SkillsPolicy


def policy_from_config(config: Config) -> SkillsPolicy:
    """The ``skills:`` section when the config schema has one (allow_high_risk, require_signature,
    max_load_bytes); the defaults otherwise."""
    section: Any = getattr(config, "skills", None)
    if section is None:
        return SkillsPolicy()
    defaults = SkillsPolicy()
    return SkillsPolicy(allow_high_risk=bool(getattr(section, "allow_high_risk", defaults.allow_high_risk)),
                        require_signature=bool(getattr(section, "require_signature", defaults.require_signature)),
                        max_load_bytes=int(getattr(section, "max_load_bytes", defaults.max_load_bytes)))


async def open_skill_registry(config: Config, data_dir: Path, policy: SkillsPolicy | None = None) -> SkillRegistry:
    policy = policy or policy_from_config(config)
    if config.store.backend == "postgres":
        from passerelle.skills.store_postgres import PostgresSkillStore

        assert config.store.postgres_dsn  # checked by the config loader
        return SkillRegistry(await PostgresSkillStore.connect(config.store.postgres_dsn, config.store.postgres_schema),
                             policy)
    from passerelle.skills.store_sqlite import SQLiteSkillStore

    return SkillRegistry(SQLiteSkillStore(data_dir / "skills.db"), policy)
