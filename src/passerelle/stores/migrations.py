"""Schema migrations: an ordered list per backend, applied once each, recorded in ``schema_migrations``.

A migration is never edited once released: a change of schema is a new entry at the end of both
lists.  The two lists describe the same tables and columns (a test compares them); only the types
differ where the backends differ:
- money (``limit_usd``) is TEXT in SQLite, whose NUMERIC affinity would round it through a float;
- ids and names are ``COLLATE "C"`` in PostgreSQL so that ``ORDER BY`` is the byte order SQLite uses,
  whatever the database's locale.

Each backend migrates in one transaction that excludes other migrators: SQLite with BEGIN IMMEDIATE
(the database's write lock), PostgreSQL with a transaction-scoped advisory lock derived from the
schema name (two instances starting together: the second waits, then finds nothing to do).
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
import time
from dataclasses import dataclass
from typing import Any, NamedTuple


class Migration(NamedTuple):
    version: int
    name: str
    statements: tuple[str, ...]


SQLITE_MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "identities, policies and the usage ledger", (
        # Data directories older than migrations already have this table (the admin key's digest).
        "CREATE TABLE IF NOT EXISTS settings (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
        "CREATE TABLE store_version (id INTEGER PRIMARY KEY CHECK (id = 1), version BIGINT NOT NULL)",
        "INSERT INTO store_version (id, version) VALUES (1, 0)",
        # Text primary keys say NOT NULL: SQLite would otherwise accept a NULL one (PostgreSQL never does).
        "CREATE TABLE tenants (id TEXT NOT NULL PRIMARY KEY, name TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL,"
        " metadata TEXT NOT NULL)",
        "CREATE TABLE teams (id TEXT NOT NULL PRIMARY KEY, tenant_id TEXT NOT NULL REFERENCES tenants (id),"
        " name TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL, metadata TEXT NOT NULL)",
        "CREATE TABLE virtual_keys (id TEXT NOT NULL PRIMARY KEY, key_sha256 TEXT NOT NULL UNIQUE,"
        " prefix TEXT NOT NULL, name TEXT NOT NULL, tenant_id TEXT NOT NULL REFERENCES tenants (id),"
        " team_id TEXT REFERENCES teams (id), created_at DOUBLE PRECISION NOT NULL, models TEXT NOT NULL,"
        " routes TEXT NOT NULL, expires_at DOUBLE PRECISION, revoked_at DOUBLE PRECISION, metadata TEXT NOT NULL)",
        "CREATE INDEX virtual_keys_tenant ON virtual_keys (tenant_id)",
        "CREATE INDEX virtual_keys_team ON virtual_keys (team_id)",
        "CREATE TABLE budgets (id TEXT NOT NULL PRIMARY KEY, scope TEXT NOT NULL, scope_id TEXT NOT NULL,"
        " period TEXT NOT NULL, limit_usd TEXT NOT NULL, mode TEXT NOT NULL, webhook TEXT,"
        " created_at DOUBLE PRECISION NOT NULL)",
        "CREATE INDEX budgets_scope ON budgets (scope, scope_id)",
        "CREATE TABLE rate_limits (id TEXT NOT NULL PRIMARY KEY, scope TEXT NOT NULL, scope_id TEXT NOT NULL,"
        " model TEXT, rpm BIGINT, tpm BIGINT, concurrent BIGINT, created_at DOUBLE PRECISION NOT NULL)",
        "CREATE INDEX rate_limits_scope ON rate_limits (scope, scope_id)",
        "CREATE TABLE usage_ledger (request_id TEXT NOT NULL PRIMARY KEY, ts DOUBLE PRECISION NOT NULL,"
        " tenant_id TEXT NOT NULL, team_id TEXT, key_id TEXT NOT NULL, route TEXT NOT NULL, model TEXT NOT NULL,"
        " deployment TEXT, provider TEXT, upstream_model TEXT, status INTEGER NOT NULL,"
        " latency_ms DOUBLE PRECISION NOT NULL, input_tokens BIGINT NOT NULL, output_tokens BIGINT NOT NULL,"
        " cache_write_tokens BIGINT NOT NULL, cache_read_tokens BIGINT NOT NULL, thinking_tokens BIGINT NOT NULL,"
        " usage_estimated BOOLEAN NOT NULL, cost_pico BIGINT NOT NULL, saved_pico BIGINT NOT NULL,"
        " cache_hit BOOLEAN NOT NULL, price_version TEXT NOT NULL)",
        # Reports filter on time (and tenant); budget seeding sums one key, team or tenant since a time.
        "CREATE INDEX usage_ledger_ts ON usage_ledger (ts)",
        "CREATE INDEX usage_ledger_tenant_ts ON usage_ledger (tenant_id, ts)",
        "CREATE INDEX usage_ledger_team_ts ON usage_ledger (team_id, ts)",
        "CREATE INDEX usage_ledger_key_ts ON usage_ledger (key_id, ts)",
    )),
    Migration(2, "compliance policies set through the admin API", (
        # id is "<scope>:<scope_id>": one policy per tenant or key.  packs is a JSON list, or NULL to inherit.
        "CREATE TABLE compliance_policies (id TEXT NOT NULL PRIMARY KEY, scope TEXT NOT NULL,"
        " scope_id TEXT NOT NULL, packs TEXT, overrides TEXT NOT NULL, codewords TEXT NOT NULL,"
        " updated_at DOUBLE PRECISION NOT NULL)",
    )),
)

_C = 'TEXT COLLATE "C"'

POSTGRES_MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "identities, policies and the usage ledger", (
        f"CREATE TABLE IF NOT EXISTS settings (name {_C} PRIMARY KEY, value TEXT NOT NULL)",
        "CREATE TABLE store_version (id INTEGER PRIMARY KEY CHECK (id = 1), version BIGINT NOT NULL)",
        "INSERT INTO store_version (id, version) VALUES (1, 0)",
        f"CREATE TABLE tenants (id {_C} PRIMARY KEY, name TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL,"
        " metadata TEXT NOT NULL)",
        f"CREATE TABLE teams (id {_C} PRIMARY KEY, tenant_id {_C} NOT NULL REFERENCES tenants (id),"
        " name TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL, metadata TEXT NOT NULL)",
        f"CREATE TABLE virtual_keys (id {_C} PRIMARY KEY, key_sha256 TEXT NOT NULL UNIQUE, prefix TEXT NOT NULL,"
        f" name TEXT NOT NULL, tenant_id {_C} NOT NULL REFERENCES tenants (id), team_id {_C} REFERENCES teams (id),"
        " created_at DOUBLE PRECISION NOT NULL, models TEXT NOT NULL, routes TEXT NOT NULL,"
        " expires_at DOUBLE PRECISION, revoked_at DOUBLE PRECISION, metadata TEXT NOT NULL)",
        "CREATE INDEX virtual_keys_tenant ON virtual_keys (tenant_id)",
        "CREATE INDEX virtual_keys_team ON virtual_keys (team_id)",
        f"CREATE TABLE budgets (id {_C} PRIMARY KEY, scope TEXT NOT NULL, scope_id {_C} NOT NULL,"
        " period TEXT NOT NULL, limit_usd NUMERIC NOT NULL, mode TEXT NOT NULL, webhook TEXT,"
        " created_at DOUBLE PRECISION NOT NULL)",
        "CREATE INDEX budgets_scope ON budgets (scope, scope_id)",
        f"CREATE TABLE rate_limits (id {_C} PRIMARY KEY, scope TEXT NOT NULL, scope_id {_C} NOT NULL, model TEXT,"
        " rpm BIGINT, tpm BIGINT, concurrent BIGINT, created_at DOUBLE PRECISION NOT NULL)",
        "CREATE INDEX rate_limits_scope ON rate_limits (scope, scope_id)",
        f"CREATE TABLE usage_ledger (request_id {_C} PRIMARY KEY, ts DOUBLE PRECISION NOT NULL,"
        f" tenant_id {_C} NOT NULL, team_id {_C}, key_id {_C} NOT NULL, route {_C} NOT NULL, model {_C} NOT NULL,"
        f" deployment {_C}, provider {_C}, upstream_model TEXT, status INTEGER NOT NULL,"
        " latency_ms DOUBLE PRECISION NOT NULL, input_tokens BIGINT NOT NULL, output_tokens BIGINT NOT NULL,"
        " cache_write_tokens BIGINT NOT NULL, cache_read_tokens BIGINT NOT NULL, thinking_tokens BIGINT NOT NULL,"
        " usage_estimated BOOLEAN NOT NULL, cost_pico BIGINT NOT NULL, saved_pico BIGINT NOT NULL,"
        " cache_hit BOOLEAN NOT NULL, price_version TEXT NOT NULL)",
        "CREATE INDEX usage_ledger_ts ON usage_ledger (ts)",
        "CREATE INDEX usage_ledger_tenant_ts ON usage_ledger (tenant_id, ts)",
        "CREATE INDEX usage_ledger_team_ts ON usage_ledger (team_id, ts)",
        "CREATE INDEX usage_ledger_key_ts ON usage_ledger (key_id, ts)",
    )),
    Migration(2, "compliance policies set through the admin API", (
        f"CREATE TABLE compliance_policies (id {_C} PRIMARY KEY, scope TEXT NOT NULL, scope_id {_C} NOT NULL,"
        " packs TEXT, overrides TEXT NOT NULL, codewords TEXT NOT NULL, updated_at DOUBLE PRECISION NOT NULL)",
    )),
)

LATEST_VERSION = SQLITE_MIGRATIONS[-1].version
assert POSTGRES_MIGRATIONS[-1].version == LATEST_VERSION, "both backends migrate to the same version"

_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_TABLE_NAME = re.compile(r"[a-z_]+")


class SchemaTooNew(RuntimeError):
    """The database was migrated by a newer Passerelle: refuse rather than misread it."""


@dataclass(frozen=True, slots=True)
class MigrationSet:
    """One component's migrations (the store's, the audit log's, the skills registry's...), recorded in a
    table of its own so that components evolve independently in one database or schema."""

    what: str  # for messages: "the store's schema", "the audit schema"
    table: str  # where the applied versions are recorded
    sqlite: tuple[Migration, ...]
    postgres: tuple[Migration, ...]

    def __post_init__(self) -> None:
        assert _TABLE_NAME.fullmatch(self.table), self.table
        assert self.sqlite[-1].version == self.postgres[-1].version, "both backends migrate to the same version"

    @property
    def latest(self) -> int:
        return self.sqlite[-1].version

    def _create(self) -> str:
        return (f"CREATE TABLE IF NOT EXISTS {self.table} (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                " applied_at DOUBLE PRECISION NOT NULL)")

    def _pending(self, migrations: tuple[Migration, ...], current: int) -> tuple[Migration, ...]:
        if current > self.latest:
            raise SchemaTooNew(f"{self.what} is at version {current}, newer than this Passerelle's "
                               f"{self.latest}: upgrade Passerelle")
        return tuple(m for m in migrations if m.version > current)

    def migrate_sqlite(self, db: sqlite3.Connection) -> int:
        """Bring an autocommit connection's database to the latest version; returns that version."""
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute(self._create())
            current = int(db.execute(f"SELECT COALESCE(MAX(version), 0) FROM {self.table}").fetchone()[0])
            for migration in self._pending(self.sqlite, current):
                for statement in migration.statements:
                    db.execute(statement)
                db.execute(f"INSERT INTO {self.table} (version, name, applied_at) VALUES (?, ?, ?)",
                           (migration.version, migration.name, time.time()))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return max(current, self.latest)

    async def migrate_postgres(self, conn: Any, schema: str) -> int:
        """Create ``schema`` if missing and bring these tables to the latest version (asyncpg connection)."""
        check_schema_name(schema)
        async with conn.transaction():
            # One migrator per schema at a time, whichever component it migrates.
            await conn.execute("SELECT pg_advisory_xact_lock($1)", advisory_lock_key(schema))
            await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            await conn.execute(f'SET LOCAL search_path TO "{schema}"')
            await conn.execute(self._create())
            current = int(await conn.fetchval(f"SELECT COALESCE(MAX(version), 0) FROM {self.table}"))
            for migration in self._pending(self.postgres, current):
                for statement in migration.statements:
                    await conn.execute(statement)
                await conn.execute(f"INSERT INTO {self.table} (version, name, applied_at) VALUES ($1, $2, $3)",
                                   migration.version, migration.name, time.time())
        return max(current, self.latest)


STORE_MIGRATIONS = MigrationSet("the store's schema", "schema_migrations", SQLITE_MIGRATIONS, POSTGRES_MIGRATIONS)


def migrate_sqlite(db: sqlite3.Connection) -> int:
    return STORE_MIGRATIONS.migrate_sqlite(db)


def check_schema_name(schema: str) -> str:
    if not _SCHEMA_NAME.fullmatch(schema):
        raise ValueError(f"invalid PostgreSQL schema name {schema!r}: expected [a-z_][a-z0-9_]{{0,62}}")
    return schema


def advisory_lock_key(schema: str) -> int:
    """A stable signed 64-bit lock id per schema: migrators of different schemas do not wait on each other."""
    digest = hashlib.sha256(f"passerelle.migrate:{schema}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


async def migrate_postgres(conn: Any, schema: str) -> int:
    return await STORE_MIGRATIONS.migrate_postgres(conn, schema)
