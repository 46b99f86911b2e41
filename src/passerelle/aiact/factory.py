"""Open the AI Act store on the configured backend: ``aiact.db`` in the data directory, or the store's
PostgreSQL schema.  Drivers are imported lazily, as stores/factory.py does."""

from __future__ import annotations

import asyncio
from pathlib import Path

from passerelle.aiact.store import AiActStore
from passerelle.config import Config


async def open_aiact_store(config: Config, data_dir: Path) -> AiActStore:
    if config.store.backend == "postgres":
        from passerelle.aiact.store_postgres import PostgresAiActStore

        assert config.store.postgres_dsn  # checked by the config loader
        return await PostgresAiActStore.connect(config.store.postgres_dsn, config.store.postgres_schema)
    from passerelle.aiact.store_sqlite import SQLiteAiActStore

    return await asyncio.to_thread(SQLiteAiActStore, data_dir / "aiact.db")
