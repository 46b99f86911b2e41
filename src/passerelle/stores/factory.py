"""Open the configured backend pair: embedded (SQLite + in-process counters) or scale-out
(PostgreSQL + Redis).  Imports are lazy so that the CLI does not load the other backend's driver."""

from __future__ import annotations

from pathlib import Path

from passerelle.config import Config
from passerelle.stores.base import Counters, Store


async def open_store(config: Config, data_dir: Path) -> Store:
    if config.store.backend == "postgres":
        from passerelle.stores.postgres import PostgresStore

        assert config.store.postgres_dsn  # checked by the config loader
        return await PostgresStore.connect(config.store.postgres_dsn, config.store.postgres_schema)
    from passerelle.stores.sqlite import SQLiteStore

    return SQLiteStore(data_dir / "passerelle.db")


async def open_counters(config: Config, data_dir: Path, workers: int = 1) -> Counters:
    """Redis for several instances; for one instance, in-process counters when it has one worker
    process and a memory-mapped file the workers share when it has several (so that N workers never
    enforce N times a limit)."""
    if config.store.backend == "postgres":
        from passerelle.stores.counters_redis import RedisCounters

        assert config.store.redis_url  # checked by the config loader
        return await RedisCounters.connect(config.store.redis_url, config.store.redis_prefix,
                                           config.cache.max_entry_bytes,
                                           owner_lease_s=config.store.reservation_lease_s)
    if workers > 1:
        from passerelle.stores.counters_shm import SharedMemoryCounters

        return SharedMemoryCounters(data_dir / "counters.shm", max_cache_entry_bytes=config.cache.max_entry_bytes,
                                    max_cache_entries=config.cache.max_entries)
    from passerelle.stores.counters_memory import MemoryCounters

    return MemoryCounters(config.cache.max_entries, max_cache_entry_bytes=config.cache.max_entry_bytes)


async def open_stores(config: Config, data_dir: Path, workers: int = 1) -> tuple[Store, Counters]:
    store = await open_store(config, data_dir)
    try:
        return store, await open_counters(config, data_dir, workers)
    except BaseException:
        await store.aclose()
        raise
