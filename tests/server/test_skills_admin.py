"""The skills marketplace through the admin API: publish (signed), verify, install, yank, search,
import, and what a key then has in effect."""

from __future__ import annotations

import base64
import io
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from passerelle.server.app import App
from passerelle.server.skills_gateway import close_registry
from passerelle.skills import signing
from passerelle.skills.archive import read_zip
from passerelle.skills.manifest import digest
from tests.server.conftest import ADMIN

ADMIN_HEADERS = {"x-api-key": ADMIN}
FIXTURES = Path(__file__).parents[1] / "skills" / "fixtures" / "anthropics"


@pytest.fixture
async def admin(app: App, client: httpx.AsyncClient) -> AsyncIterator[httpx.AsyncClient]:
    yield client
    if app.gateway is not None:
        await close_registry(app.gateway)


def archive(name: str, body: str = "Steps.\n") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(f"{name}/SKILL.md", f"---\nname: {name}\ndescription: The {name} skill.\n---\n{body}")
    return buf.getvalue()


async def call(client: httpx.AsyncClient, method: str, path: str, body: Any = None, status: int = 200) -> Any:
    response = await client.request(method, path, json=body, headers=ADMIN_HEADERS)
    assert response.status_code == status, response.text
    return response.json()


async def test_publish_signed_verify_install_yank(admin: httpx.AsyncClient) -> None:
    pem, public = signing.generate()
    await call(admin, "POST", "/admin/skill-publishers", {"tenant": "acme", "name": "sec", "public_key": public}, 201)
    data = archive("notes")
    signature = signing.sign(signing.load_private(pem), digest(read_zip(data).files))
    published = await call(admin, "POST", "/admin/skills", {
        "tenant": "acme", "archive_base64": base64.b64encode(data).decode(), "version": "0.1.0",
        "publisher": "sec", "signature": signature, "tags": ["docs"]}, 201)
    assert published["signed"] and published["risk_report"]["level"] == "low"
    verified = await call(admin, "GET", "/admin/skills/notes/versions/0.1.0/verify?tenant=acme")
    assert verified["ok"] and verified["signature"] == "valid"
    await call(admin, "POST", "/admin/skills/notes/install", {"tenant": "acme", "scope": "key", "scope_id": "k1"}, 201)
    effective = await call(admin, "GET", "/admin/skill-installs?tenant=acme&key=k1")
    assert [(x["name"], x["version"]) for x in effective["data"]] == [("notes", "0.1.0")]
    yanked = await call(admin, "POST", "/admin/skills/notes/versions/0.1.0/yank", {"tenant": "acme"})
    assert yanked["yanked_at"] is not None
    shown = await call(admin, "GET", "/admin/skills/notes?tenant=acme")
    assert shown["latest_version"] is None and shown["installs"] == 1
    await call(admin, "POST", "/admin/skills/notes/uninstall", {"tenant": "acme", "scope": "key", "scope_id": "k1"})
    hits = await call(admin, "GET", "/admin/skills?tenant=acme&q=notes")
    assert hits["data"] == []  # yanked: not found by search any more


async def test_refusals(admin: httpx.AsyncClient, client: httpx.AsyncClient) -> None:
    bad = base64.b64encode(archive("Bad_Name")).decode()
    error = await call(admin, "POST", "/admin/skills", {"tenant": "acme", "archive_base64": bad}, 400)
    assert "name-lowercase" in error["error"]["message"]
    error = await call(admin, "POST", "/admin/skills", {"archive_base64": "!!"}, 400)
    assert "base64" in error["error"]["message"]
    await call(admin, "GET", "/admin/skills/missing", status=404)
    await call(admin, "GET", "/admin/skills?max_risk=extreme", status=400)
    await call(admin, "POST", "/admin/skills", {"archive_base64": base64.b64encode(archive("x")).decode()}, 201)
    await call(admin, "POST", "/admin/skills",
               {"archive_base64": base64.b64encode(archive("x")).decode(), "version": "1.0.0"}, 409)
    hostile = await call(admin, "POST", "/admin/skills/x/install", {"scope": "key"}, 400)
    assert "scope_id" in hostile["error"]["message"]
    denied = await client.get("/admin/skills", headers={"x-api-key": "sk-nope"})
    assert denied.status_code == 401


async def test_import_a_marketplace_and_search(admin: httpx.AsyncClient) -> None:
    results = await call(admin, "POST", "/admin/skills/import", {"tenant": "acme", "path": str(FIXTURES)})
    assert sum(1 for r in results["data"] if r["error"] is None) == 16
    hits = await call(admin, "GET", "/admin/skills?tenant=acme&q=slide%20decks&limit=3")
    assert hits["data"][0]["name"] == "pptx"
    assert (await call(admin, "GET", "/admin/skills?tenant=globex&q=pptx"))["data"] == []
