"""The AI Act tables, migrated on their own (``aiact_schema_migrations``), as the audit log's and the
skills registry's are.  SQLite keeps them in ``aiact.db`` next to ``passerelle.db``; PostgreSQL in the
store's schema.  Records are kept as JSON documents (``data``) next to the columns that queries filter
or sort on; ``aiact_version`` is the one counter the request path polls.
"""

from __future__ import annotations

from passerelle.stores.migrations import Migration, MigrationSet


def _tables(text: str) -> tuple[str, ...]:
    return (
        "CREATE TABLE aiact_version (id INTEGER NOT NULL PRIMARY KEY, version BIGINT NOT NULL)",
        "INSERT INTO aiact_version (id, version) VALUES (1, 0)",
        f"CREATE TABLE aiact_purposes (id {text} NOT NULL PRIMARY KEY, version BIGINT NOT NULL,"
        f" status {text} NOT NULL, risk_class {text} NOT NULL, data TEXT NOT NULL,"
        " updated_at DOUBLE PRECISION NOT NULL)",
        f"CREATE TABLE aiact_purpose_versions (purpose_id {text} NOT NULL, version BIGINT NOT NULL,"
        f" data TEXT NOT NULL, changed_at DOUBLE PRECISION NOT NULL, actor {text} NOT NULL,"
        " PRIMARY KEY (purpose_id, version))",
        f"CREATE TABLE aiact_key_purposes (key_id {text} NOT NULL PRIMARY KEY, purpose_id {text} NOT NULL"
        f" REFERENCES aiact_purposes (id), annex_use {text}, created_at DOUBLE PRECISION NOT NULL)",
        "CREATE INDEX aiact_key_purposes_purpose ON aiact_key_purposes (purpose_id, key_id)",
        f"CREATE TABLE aiact_suspensions (kind {text} NOT NULL, target {text} NOT NULL, reason TEXT NOT NULL,"
        f" actor {text} NOT NULL, at DOUBLE PRECISION NOT NULL, PRIMARY KEY (kind, target))",
        f"CREATE TABLE aiact_alerts (id {text} NOT NULL PRIMARY KEY, kind {text} NOT NULL,"
        f" key_id {text} NOT NULL, purpose_id {text} NOT NULL, day {text} NOT NULL, message TEXT NOT NULL,"
        " created_at DOUBLE PRECISION NOT NULL, UNIQUE (kind, key_id, purpose_id, day))",
        "CREATE INDEX aiact_alerts_time ON aiact_alerts (created_at)",
        f"CREATE TABLE aiact_suppliers (provider {text} NOT NULL, model {text} NOT NULL, data TEXT NOT NULL,"
        " updated_at DOUBLE PRECISION NOT NULL, PRIMARY KEY (provider, model))",
        f"CREATE TABLE aiact_risks (id {text} NOT NULL PRIMARY KEY, purpose_id {text} NOT NULL"
        f" REFERENCES aiact_purposes (id), review_due {text} NOT NULL, data TEXT NOT NULL,"
        " created_at DOUBLE PRECISION NOT NULL)",
        "CREATE INDEX aiact_risks_purpose ON aiact_risks (purpose_id, created_at)",
        f"CREATE TABLE aiact_incidents (id {text} NOT NULL PRIMARY KEY, purpose_id {text} NOT NULL"
        " REFERENCES aiact_purposes (id), deadline DOUBLE PRECISION NOT NULL, data TEXT NOT NULL,"
        " created_at DOUBLE PRECISION NOT NULL)",
        "CREATE INDEX aiact_incidents_purpose ON aiact_incidents (purpose_id, created_at)",
    )


SQLITE_AIACT_MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "purposes, key bindings, suspensions, alerts, supplier and risk registers, incidents",
              _tables("TEXT")),
)
POSTGRES_AIACT_MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "purposes, key bindings, suspensions, alerts, supplier and risk registers, incidents",
              _tables('TEXT COLLATE "C"')),  # byte order, as SQLite
)

MIGRATIONS = MigrationSet("the AI Act schema", "aiact_schema_migrations", SQLITE_AIACT_MIGRATIONS,
                          POSTGRES_AIACT_MIGRATIONS)
