"""The skills tables, migrated on their own (``skill_schema_migrations``), like the audit log's, so that
the marketplace evolves without touching the main store's migration list.

SQLite keeps them in ``skills.db`` next to ``passerelle.db``; PostgreSQL in the store's schema.  The
two lists describe the same tables and columns except the search index, which is each backend's own
full-text engine: an FTS5 virtual table in SQLite, a table with a generated, weighted ``tsvector``
and a GIN index in PostgreSQL.  File contents are stored in the database (BLOB / BYTEA).
"""

from __future__ import annotations

from passerelle.stores.migrations import Migration, MigrationSet


def _tables(text: str, blob: str) -> tuple[str, ...]:
    return (
        f"CREATE TABLE skill_publishers (id {text} NOT NULL PRIMARY KEY, tenant_id {text} NOT NULL,"
        f" name {text} NOT NULL, public_key TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL,"
        " UNIQUE (tenant_id, name))",
        f"CREATE TABLE skills (id {text} NOT NULL PRIMARY KEY, tenant_id {text} NOT NULL, name {text} NOT NULL,"
        f" display_title TEXT NOT NULL, visibility {text} NOT NULL, latest_version {text},"
        " created_at DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION NOT NULL, UNIQUE (tenant_id, name))",
        "CREATE INDEX skills_visibility ON skills (visibility, name)",
        f"CREATE TABLE skill_versions (skill_id {text} NOT NULL REFERENCES skills (id), version {text} NOT NULL,"
        f" api_version {text} NOT NULL, name {text} NOT NULL, description TEXT NOT NULL, body TEXT NOT NULL,"
        f" digest TEXT NOT NULL, signature TEXT, publisher_id {text}, risk_level {text} NOT NULL,"
        " risk_report TEXT NOT NULL, tags TEXT NOT NULL, file_count BIGINT NOT NULL, total_bytes BIGINT NOT NULL,"
        " created_at DOUBLE PRECISION NOT NULL, yanked_at DOUBLE PRECISION, PRIMARY KEY (skill_id, version),"
        " UNIQUE (skill_id, api_version))",
        f"CREATE TABLE skill_files (skill_id {text} NOT NULL, version {text} NOT NULL, path {text} NOT NULL,"
        f" size BIGINT NOT NULL, sha256 TEXT NOT NULL, content {blob} NOT NULL, PRIMARY KEY (skill_id, version, path),"
        " FOREIGN KEY (skill_id, version) REFERENCES skill_versions (skill_id, version))",
        f"CREATE TABLE skill_tags (skill_id {text} NOT NULL REFERENCES skills (id), tag {text} NOT NULL,"
        " PRIMARY KEY (skill_id, tag))",
        "CREATE INDEX skill_tags_tag ON skill_tags (tag)",
        f"CREATE TABLE skill_installs (id {text} NOT NULL PRIMARY KEY, tenant_id {text} NOT NULL,"
        f" scope {text} NOT NULL, scope_id {text} NOT NULL, skill_id {text} NOT NULL REFERENCES skills (id),"
        f" pin {text}, created_at DOUBLE PRECISION NOT NULL, UNIQUE (scope, scope_id, skill_id))",
        "CREATE INDEX skill_installs_skill ON skill_installs (skill_id)",
        "CREATE INDEX skill_installs_tenant ON skill_installs (tenant_id)",
    )


SQLITE_SKILL_MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "skills registry, files, installs and the search index", (
        *_tables("TEXT", "BLOB"),
        # One row per skill (its latest installable version); porter stemming as PostgreSQL's 'english'.
        "CREATE VIRTUAL TABLE skill_search USING fts5(skill_id UNINDEXED, name, description, body,"
        " tokenize = 'porter unicode61')",
    )),
)

_C = 'TEXT COLLATE "C"'  # byte order, as SQLite, whatever the database's locale

POSTGRES_SKILL_MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "skills registry, files, installs and the search index", (
        *_tables(_C, "BYTEA"),
        f"CREATE TABLE skill_search (skill_id {_C} NOT NULL PRIMARY KEY, name TEXT NOT NULL,"
        " description TEXT NOT NULL, body TEXT NOT NULL, document tsvector GENERATED ALWAYS AS ("
        "setweight(to_tsvector('english', name), 'A') || setweight(to_tsvector('english', description), 'B')"
        " || setweight(to_tsvector('english', body), 'C')) STORED)",
        "CREATE INDEX skill_search_document ON skill_search USING GIN (document)",
    )),
)

MIGRATIONS = MigrationSet("the skills schema", "skill_schema_migrations", SQLITE_SKILL_MIGRATIONS,
                          POSTGRES_SKILL_MIGRATIONS)
