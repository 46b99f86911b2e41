"""The audit tables, migrated on their own (``audit_schema_migrations``), so that the audit log can
evolve without touching the main store's migration list.

SQLite keeps them in ``audit.db`` next to ``passerelle.db`` (the chain's write lock then never waits
on the ledger's); PostgreSQL in the store's schema.  Both refuse UPDATE and DELETE of records with
triggers, except a DELETE run by retention pruning (SQLite: while the ``audit_pruning`` row exists,
inside the prune's own transaction; PostgreSQL: inside ``audit_prune()``).  Anyone who owns the
database can still drop a trigger: the hash chain is what detects that.
"""

from __future__ import annotations

from passerelle.stores.migrations import Migration, MigrationSet

_RECORD_COLUMNS = (
    " request_id TEXT NOT NULL, time_us BIGINT NOT NULL, tenant_id TEXT NOT NULL, team_id TEXT,"
    " key_id TEXT NOT NULL, route TEXT NOT NULL, purpose TEXT, model TEXT NOT NULL, deployment TEXT,"
    " upstream_model TEXT, packs TEXT NOT NULL, findings TEXT NOT NULL, decision TEXT NOT NULL,"
    " status INTEGER NOT NULL, input_tokens BIGINT NOT NULL, output_tokens BIGINT NOT NULL,"
    " prompt_sha256 TEXT NOT NULL, answer_sha256 TEXT, content TEXT, retention_days INTEGER NOT NULL,"
    " extra TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL)")
_COMMON = (
    "CREATE INDEX audit_records_time ON audit_records (time_us)",
    "CREATE INDEX audit_records_tenant ON audit_records (tenant_id, seq)",
    # One row per prune: the last pruned record's seq and hash, where verification starts.
    "CREATE TABLE audit_anchors (through_seq BIGINT NOT NULL PRIMARY KEY, hash TEXT NOT NULL,"
    " pruned_at DOUBLE PRECISION NOT NULL, records BIGINT NOT NULL)",
    "CREATE TABLE audit_holds (id TEXT NOT NULL PRIMARY KEY, tenant_id TEXT NOT NULL,"
    " created_at DOUBLE PRECISION NOT NULL, until DOUBLE PRECISION, reason TEXT NOT NULL,"
    " released_at DOUBLE PRECISION)",
)

SQLITE_AUDIT_MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "hash-chained audit records, prune anchors, legal holds", (
        # INTEGER PRIMARY KEY: the rowid itself, the cheapest ordered key SQLite has.
        "CREATE TABLE audit_records (seq INTEGER NOT NULL PRIMARY KEY," + _RECORD_COLUMNS,
        *_COMMON,
        "CREATE TABLE audit_pruning (id INTEGER PRIMARY KEY CHECK (id = 1))",
        "CREATE TRIGGER audit_records_no_update BEFORE UPDATE ON audit_records"
        " BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END",
        "CREATE TRIGGER audit_records_no_delete BEFORE DELETE ON audit_records"
        " WHEN NOT EXISTS (SELECT 1 FROM audit_pruning)"
        " BEGIN SELECT RAISE(ABORT, 'audit records are append-only: only retention pruning deletes'); END",
        "CREATE TRIGGER audit_anchors_no_update BEFORE UPDATE ON audit_anchors"
        " BEGIN SELECT RAISE(ABORT, 'prune anchors are append-only'); END",
        "CREATE TRIGGER audit_anchors_no_delete BEFORE DELETE ON audit_anchors"
        " BEGIN SELECT RAISE(ABORT, 'prune anchors are append-only'); END",
    )),
)

POSTGRES_AUDIT_MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "hash-chained audit records, prune anchors, legal holds", (
        "CREATE TABLE audit_records (seq BIGINT NOT NULL PRIMARY KEY," + _RECORD_COLUMNS,
        *_COMMON,
        # The chain's mutex: appenders of every instance lock this row, then read the head.
        "CREATE TABLE audit_chain_lock (id INTEGER PRIMARY KEY CHECK (id = 1))",
        "INSERT INTO audit_chain_lock (id) VALUES (1)",
        """CREATE FUNCTION audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' AND TG_TABLE_NAME = 'audit_records'
     AND current_setting('passerelle.audit_prune', true) = 'on' THEN
    RETURN OLD;
  END IF;
  RAISE EXCEPTION 'audit records are append-only (% on % refused)', TG_OP, TG_TABLE_NAME
    USING ERRCODE = 'insufficient_privilege';
END $$""",
        "CREATE TRIGGER audit_records_append_only BEFORE UPDATE OR DELETE ON audit_records"
        " FOR EACH ROW EXECUTE FUNCTION audit_refuse_change()",
        "CREATE TRIGGER audit_records_no_truncate BEFORE TRUNCATE ON audit_records"
        " FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change()",
        "CREATE TRIGGER audit_anchors_append_only BEFORE UPDATE OR DELETE ON audit_anchors"
        " FOR EACH ROW EXECUTE FUNCTION audit_refuse_change()",
        "CREATE TRIGGER audit_anchors_no_truncate BEFORE TRUNCATE ON audit_anchors"
        " FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change()",
        # The one deletion path: a prefix of the chain, with its anchor, in the caller's transaction.
        """CREATE FUNCTION audit_prune(through BIGINT, through_hash TEXT, at DOUBLE PRECISION)
RETURNS BIGINT LANGUAGE plpgsql AS $$
DECLARE removed BIGINT;
BEGIN
  PERFORM set_config('passerelle.audit_prune', 'on', true);
  DELETE FROM audit_records WHERE seq <= through;
  GET DIAGNOSTICS removed = ROW_COUNT;
  PERFORM set_config('passerelle.audit_prune', 'off', true);
  INSERT INTO audit_anchors (through_seq, hash, pruned_at, records) VALUES (through, through_hash, at, removed);
  RETURN removed;
END $$""",
    )),
)

MIGRATIONS = MigrationSet("the audit schema", "audit_schema_migrations", SQLITE_AUDIT_MIGRATIONS,
                          POSTGRES_AUDIT_MIGRATIONS)
