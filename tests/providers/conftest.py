from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from passerelle.providers.http import HttpClient


@pytest.fixture
async def http() -> AsyncIterator[HttpClient]:
    client = HttpClient()
    yield client
    await client.aclose()
