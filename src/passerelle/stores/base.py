"""The store interface the gateway needs today: settings and a health check."""

from __future__ import annotations

from typing import Protocol


class Store(Protocol):
    async def ping(self) -> None:
        """Raise if the store cannot serve requests."""
        ...

    async def get_setting(self, name: str) -> str | None: ...

    async def set_setting(self, name: str, value: str) -> None: ...

    async def aclose(self) -> None: ...
