"""Login, session cookies, CSRF and logout of the console."""

from __future__ import annotations

import httpx

from passerelle.admin.service import AdminService
from passerelle.console.session import COOKIE, LIFETIME_S, Sessions
from passerelle.server.app import App
from passerelle.stores.records import KeyQuery
from tests.console.conftest import ADMIN, csrf_of, login


async def test_every_page_needs_a_session(anon: httpx.AsyncClient) -> None:
    for path in ("/console/", "/console/keys", "/console/usage", "/console/usage.csv", "/console/audit",
                 "/console/compliance", "/console/policies", "/console/skills", "/console/aiact"):
        response = await anon.get(path)
        assert response.status_code == 303 and response.headers["location"] == "/console/login", path
    for path in ("/console/keys", "/console/policies"):
        response = await anon.post(path, data={"tenant": "default", "scope": "tenant", "csrf": "x"})
        assert response.status_code == 401
    assert (await anon.get("/console")).headers["location"] == "/console/"


async def test_login_sets_a_strict_http_only_expiring_cookie(anon: httpx.AsyncClient) -> None:
    response = await login(anon)
    cookie = next(v for k, v in response.headers.multi_items() if k == "set-cookie" and v.startswith(COOKIE + "="))
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and f"Max-Age={LIFETIME_S}" in cookie
    assert "Path=/console" in cookie and "Secure" not in cookie  # plain http here
    page = await anon.get("/console/")
    assert page.status_code == 200 and "Overview" in page.text
    assert page.headers["cache-control"] == "no-store" and page.headers["x-frame-options"] == "DENY"


async def test_secure_cookie_behind_https(app: App) -> None:
    # A TLS-terminating proxy says so in x-forwarded-proto; the ASGI scheme says it when served over TLS.
    for base, headers in (("http://gateway", {"x-forwarded-proto": "https"}), ("https://gateway", {})):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=base, headers=headers) as client:
            page = await client.get("/console/login")
            assert "; Secure" in page.headers["set-cookie"]
            if base.startswith("https"):
                response = await login(client)
                cookies = [v for k, v in response.headers.multi_items() if k == "set-cookie"]
                assert any(c.startswith(COOKIE + "=") and "; Secure" in c for c in cookies)


async def test_wrong_key_and_missing_login_token_are_refused(anon: httpx.AsyncClient, app: App) -> None:
    response = await login(anon, "sk-not-the-admin")
    assert response.status_code == 401 and "not the admin key" in response.text
    assert not any(v.startswith(COOKIE + "=") for k, v in response.headers.multi_items() if k == "set-cookie")
    assert (await anon.get("/console/")).status_code == 303
    # A login POST without the form's double-submit cookie (cross-site login) does not log in.
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway") as other:
        forged = await other.post("/console/login", data={"login_token": "abc", "admin_key": ADMIN})
        assert forged.status_code == 401 and "expired" in forged.text
        assert (await other.get("/console/")).status_code == 303


async def test_csrf_is_required_on_every_post(console: httpx.AsyncClient, app: App) -> None:
    for data in ({"tenant": "default"}, {"tenant": "default", "csrf": "forged"}):
        response = await console.post("/console/keys", data=data)
        assert response.status_code == 403 and "CSRF" in response.text
    assert app.gateway is not None
    assert (await app.gateway.store.page_keys(KeyQuery()))[1] == 0
    assert (await console.post("/console/logout", data={})).status_code == 403  # logout too
    await AdminService(app.gateway.store).create_tenant("acme")
    token = csrf_of(await console.get("/console/keys"))
    assert (await console.post("/console/keys", data={"tenant": "acme", "csrf": token})).status_code == 201


async def test_logout_revokes_the_cookie_even_if_replayed(console: httpx.AsyncClient) -> None:
    stolen = console.cookies[COOKIE]
    token = csrf_of(await console.get("/console/"))
    response = await console.post("/console/logout", data={"csrf": token})
    assert response.status_code == 303 and response.headers["location"] == "/console/login"
    assert (await console.get("/console/")).status_code == 303
    console.cookies.set(COOKIE, stolen, path="/console")
    assert (await console.get("/console/")).status_code == 303


async def test_forged_tampered_and_expired_cookies(app: App, console: httpx.AsyncClient) -> None:
    assert app.gateway is not None
    sessions = Sessions(app.gateway.store, app.gateway.counters, "abc")
    cookie, session = await sessions.create(now=1_000.0)
    assert await sessions.check(cookie, now=1_001.0) == session
    assert await sessions.check(cookie, now=1_000.0 + LIFETIME_S) is None  # expired
    sid, expires, mac = cookie.split(".")
    assert await sessions.check(f"{sid}.{int(expires) + 3600}.{mac}", now=1_001.0) is None  # extended by hand
    assert await sessions.check(f"{sid}x.{expires}.{mac}", now=1_001.0) is None
    for junk in ("", "a.b", "a.b.c.d", "a.notanumber.c", "\x00.1.x"):
        assert await sessions.check(junk, now=1_001.0) is None
    # Another admin key (rotated) makes every earlier cookie invalid.
    rotated = Sessions(app.gateway.store, app.gateway.counters, "another-admin-digest")
    assert await rotated.check(cookie, now=1_001.0) is None
    console.cookies.set(COOKIE, f"{sid}.{expires}.{'0' * 64}", path="/console")
    assert (await console.get("/console/")).status_code == 303
