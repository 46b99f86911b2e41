"""Console sessions across instances sharing PostgreSQL and Redis: a cookie from one instance works on
the other, and logging out on either ends it on both (the revocation list is in Redis)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import pytest

from passerelle.config import load_config
from passerelle.console.session import COOKIE
from passerelle.pipeline.auth import digest
from passerelle.server.app import App, create_app
from tests.console.conftest import ADMIN, csrf_of, login
from tests.support.backends import scale_out


@pytest.fixture
async def two_instances(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    async with scale_out() as backend, AsyncExitStack() as stack:
        config_file = tmp_path / "passerelle.yaml"
        config_file.write_text(backend.yaml() + "server: {log_level: error}\n")
        clients = []
        for name in ("a", "b"):
            app: App = create_app(config=load_config(config_file, env={}), data_dir=tmp_path / name,
                                  admin_key_sha256=digest(ADMIN))
            client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway")
            stack.push_async_callback(_close, app)
            await stack.enter_async_context(client)
            clients.append(client)
        yield clients[0], clients[1]


async def _close(app: App) -> None:
    if app.gateway is not None:
        await app.gateway.aclose()


async def test_a_session_from_one_instance_works_and_ends_on_the_other(
        two_instances: tuple[httpx.AsyncClient, httpx.AsyncClient]) -> None:
    a, b = two_instances
    assert (await b.get("/console/")).status_code == 303  # b builds its gateway (and may race for the secret)
    assert (await login(a)).status_code == 303
    cookie = a.cookies[COOKIE]
    b.cookies.set(COOKIE, cookie, path="/console")
    page = await b.get("/console/keys")
    assert page.status_code == 200 and "Keys &amp; budgets" in page.text
    # The CSRF token is the same on both: a form served by a is accepted by b.
    token = csrf_of(await a.get("/console/keys"))
    assert (await b.post("/console/tenants", data={"id": "acme", "csrf": token})).status_code == 201
    assert (await b.post("/console/logout", data={"csrf": token})).status_code == 303
    assert (await a.get("/console/keys")).status_code == 303  # revoked in Redis, seen by a at once
