"""An in-process gateway and a logged-in console client."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from passerelle.config import load_config
from passerelle.pipeline.auth import digest
from passerelle.server.app import App, create_app

ADMIN = "sk-admin-console-test"


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[App]:
    config = load_config(None, env={})
    config.server.log_level = "error"
    application = create_app(config=config, data_dir=tmp_path, admin_key_sha256=digest(ADMIN))
    yield application
    if application.gateway is not None:
        await application.gateway.aclose()


@pytest.fixture
async def anon(app: App) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway") as c:
        yield c


async def login(client: httpx.AsyncClient, key: str = ADMIN) -> httpx.Response:
    form = await client.get("/console/login")
    token = re.search(r'name="login_token" value="([^"]+)"', form.text)
    assert token is not None, form.text
    return await client.post("/console/login", data={"login_token": token[1], "admin_key": key})


def csrf_of(page: httpx.Response) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found is not None, page.text
    return found[1]


@pytest.fixture
async def console(anon: httpx.AsyncClient) -> httpx.AsyncClient:
    response = await login(anon)
    assert response.status_code == 303 and response.headers["location"] == "/console/"
    return anon
