"""The stores' own fixture: every admin test runs on SQLite and on the machine's PostgreSQL."""

from tests.stores.conftest import pg_schema, store

__all__ = ["pg_schema", "store"]
