from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from passerelle.config import load_config
from passerelle.pipeline.auth import digest
from passerelle.server.app import App, create_app

ADMIN = "sk-admin-inprocess"


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[App]:
    config = load_config(None, env={})
    config.server.max_body_bytes = 64 * 1024
    config.server.log_level = "error"  # request logs go to fd 2, outside pytest's capture
    application = create_app(config=config, data_dir=tmp_path, admin_key_sha256=digest(ADMIN))
    yield application
    if application.gateway is not None:
        await application.gateway.aclose()


@pytest.fixture
async def client(app: App) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway") as c:
        yield c
