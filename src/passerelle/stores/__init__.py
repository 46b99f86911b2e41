"""Storage behind a narrow interface: an embedded default (SQLite) and scale-out backends."""

from passerelle.stores.base import Store
from passerelle.stores.sqlite import SQLiteStore

__all__ = ["SQLiteStore", "Store"]
