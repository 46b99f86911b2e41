"""The store interface the request path needs today: a health check.  (The admin key's digest is
read and written once, by the CLI, before any worker starts: see SQLiteStore's *_sync methods.)"""

from __future__ import annotations

from typing import Protocol


class Store(Protocol):
    async def ping(self) -> None:
        """Raise if the store cannot serve requests."""
        ...

    async def aclose(self) -> None: ...
