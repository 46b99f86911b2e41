"""Schema migrations: idempotent, safe when instances start together, and upgrading old data directories."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import asyncpg
import pytest

from passerelle.stores import PostgresStore, SQLiteStore
from passerelle.stores.migrations import (
    LATEST_VERSION,
    POSTGRES_MIGRATIONS,
    SQLITE_MIGRATIONS,
    SchemaTooNew,
    advisory_lock_key,
)
from passerelle.stores.postgres import numbered
from tests.stores.conftest import PG_DSN, key, tenant


def sqlite_versions(path: Path) -> list[int]:
    with sqlite3.connect(path) as db:
        return [int(v) for (v,) in db.execute("SELECT version FROM schema_migrations ORDER BY version")]


async def pg_fetch(sql: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(PG_DSN)
    try:
        rows: list[asyncpg.Record] = await conn.fetch(sql)
        return rows
    finally:
        await conn.close()


async def test_sqlite_migrates_once_and_keeps_data(tmp_path: Path) -> None:
    path = tmp_path / "passerelle.db"
    store = SQLiteStore(path)
    await store.create_tenant(tenant("acme"))
    await store.create_key(key("key_1", "acme"))
    version = await store.version()
    await store.aclose()
    for _ in range(2):
        store = SQLiteStore(path)
        assert [t.id for t in await store.list_tenants()] == ["acme"]
        assert await store.version() == version
        await store.aclose()
    assert sqlite_versions(path) == [m.version for m in SQLITE_MIGRATIONS]
    assert sqlite_versions(path)[-1] == LATEST_VERSION


async def test_an_old_sqlite_file_upgrades_and_keeps_its_settings(tmp_path: Path) -> None:
    path = tmp_path / "passerelle.db"
    with sqlite3.connect(path) as db:  # what Passerelle wrote before migrations existed
        db.execute("CREATE TABLE IF NOT EXISTS settings (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
        db.execute("INSERT INTO settings VALUES ('admin_key_sha256', 'f00d')")
    db.close()
    store = SQLiteStore(path)
    assert store.get_setting_sync("admin_key_sha256") == "f00d"
    assert await store.get_setting("admin_key_sha256") == "f00d"
    store.set_setting_sync("other", "1")
    assert await store.get_setting("other") == "1"
    await store.create_tenant(tenant("acme"))
    assert await store.version() == 1
    await store.aclose()
    assert sqlite_versions(path) == [m.version for m in SQLITE_MIGRATIONS]


async def test_sqlite_instances_opening_together_share_one_store(tmp_path: Path) -> None:
    # Like the worker processes of ``serve --workers N``: each opens (and would migrate) the same file.
    path = tmp_path / "passerelle.db"
    stores = await asyncio.gather(*(asyncio.to_thread(SQLiteStore, path) for _ in range(4)))
    try:
        await stores[0].create_tenant(tenant("acme"))
        for store in stores:
            assert await store.version() == 1
            assert [t.id for t in (await store.snapshot()).tenants] == ["acme"]
    finally:
        for store in stores:
            await store.aclose()
    assert sqlite_versions(path) == [m.version for m in SQLITE_MIGRATIONS]


async def test_sqlite_refuses_a_schema_from_the_future(tmp_path: Path) -> None:
    path = tmp_path / "passerelle.db"
    SQLiteStore(path)._db.close()
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO schema_migrations VALUES (?, 'from a newer release', 0)", (LATEST_VERSION + 1,))
    db.close()
    with pytest.raises(SchemaTooNew):
        SQLiteStore(path)


async def test_postgres_migrates_once_and_keeps_data(pg_schema: str) -> None:
    store = await PostgresStore.connect(PG_DSN, pg_schema)
    await store.create_tenant(tenant("acme"))
    await store.aclose()
    store = await PostgresStore.connect(PG_DSN, pg_schema)
    try:
        assert [t.id for t in await store.list_tenants()] == ["acme"]
        assert await store.version() == 1
    finally:
        await store.aclose()
    rows = await pg_fetch(f'SELECT version FROM "{pg_schema}".schema_migrations ORDER BY version')
    assert [r["version"] for r in rows] == [m.version for m in POSTGRES_MIGRATIONS]


async def test_postgres_instances_starting_together_both_succeed(pg_schema: str) -> None:
    stores = await asyncio.gather(*(PostgresStore.connect(PG_DSN, pg_schema, max_size=2) for _ in range(4)))
    try:
        await stores[0].create_tenant(tenant("acme"))
        for store in stores:
            assert [t.id for t in await store.list_tenants()] == ["acme"]
    finally:
        for store in stores:
            await store.aclose()
    rows = await pg_fetch(f'SELECT version FROM "{pg_schema}".schema_migrations ORDER BY version')
    assert [r["version"] for r in rows] == [m.version for m in POSTGRES_MIGRATIONS]


async def test_postgres_refuses_a_schema_from_the_future(pg_schema: str) -> None:
    await (await PostgresStore.connect(PG_DSN, pg_schema)).aclose()
    await pg_fetch(f"INSERT INTO \"{pg_schema}\".schema_migrations VALUES ({LATEST_VERSION + 1}, 'newer', 0)"
                   " RETURNING version")
    with pytest.raises(SchemaTooNew):
        await PostgresStore.connect(PG_DSN, pg_schema)


@pytest.mark.parametrize("bad", ["", "Passerelle", "1abc", 'x"; DROP SCHEMA public; --', "a" * 64])
async def test_schema_names_are_checked(bad: str) -> None:
    with pytest.raises(ValueError, match="schema name"):
        await PostgresStore.connect(PG_DSN, bad)


async def test_both_backends_have_the_same_tables_and_columns(tmp_path: Path, pg_schema: str) -> None:
    await (await PostgresStore.connect(PG_DSN, pg_schema)).aclose()
    rows = await pg_fetch(f"SELECT table_name, column_name, is_nullable FROM information_schema.columns"
                          f" WHERE table_schema = '{pg_schema}'")
    pg = {(r["table_name"], r["column_name"], r["is_nullable"] == "YES") for r in rows}
    SQLiteStore(tmp_path / "p.db")._db.close()
    with sqlite3.connect(tmp_path / "p.db") as db:
        tables = [t for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        lite = {(t, c[1], not c[3] and not c[5]) for t in tables for c in db.execute(f"PRAGMA table_info({t})")}
    db.close()
    assert lite == pg
    assert {t for t, _, _ in lite} == {"schema_migrations", "settings", "store_version", "tenants", "teams",
                                        "virtual_keys", "budgets", "rate_limits", "usage_ledger",
                                        "compliance_policies"}


def test_lock_keys_and_placeholders() -> None:
    assert advisory_lock_key("passerelle") == advisory_lock_key("passerelle")
    assert advisory_lock_key("passerelle") != advisory_lock_key("other")
    assert -(2**63) <= advisory_lock_key("passerelle") < 2**63
    assert numbered("SELECT ? , ?, 'a' FROM t WHERE x = ?") == "SELECT $1 , $2, 'a' FROM t WHERE x = $3"
