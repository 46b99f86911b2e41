"""Polling for what happens in the background of a test: a finished stream's connection returns to the upstream
client's pool once the rest of its answer (the body's framing) has been read."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from passerelle.providers.http import HttpClient


async def until(condition: Callable[[], bool], within: float = 5.0) -> None:
    """Return once ``condition()`` holds; fail the test after ``within`` seconds."""
    deadline = asyncio.get_running_loop().time() + within
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition never held"
        await asyncio.sleep(0.005)


async def until_idle(http: HttpClient, count: int = 1) -> None:
    """Return once ``count`` connections wait idle in the pool."""
    await until(lambda: http.pool.idle_connections >= count)
