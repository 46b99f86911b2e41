"""Storage behind a narrow interface: an embedded default (SQLite) and scale-out backends.

``PostgresStore`` is imported on first use, so that the embedded gateway never loads asyncpg.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from passerelle.stores.base import Conflict, NotFound, Store
from passerelle.stores.records import (
    Budget,
    RateLimit,
    ReportQuery,
    ReportRow,
    Snapshot,
    Team,
    Tenant,
    UsageRecord,
    VirtualKey,
)
from passerelle.stores.sqlite import SQLiteStore

if TYPE_CHECKING:
    from passerelle.stores.postgres import PostgresStore


def __getattr__(name: str) -> Any:
    if name == "PostgresStore":
        from passerelle.stores.postgres import PostgresStore

        return PostgresStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Budget",
    "Conflict",
    "NotFound",
    "PostgresStore",
    "RateLimit",
    "ReportQuery",
    "ReportRow",
    "SQLiteStore",
    "Snapshot",
    "Store",
    "Team",
    "Tenant",
    "UsageRecord",
    "VirtualKey",
]
