"""The console's pages in-process: keys (paged, filtered, created, revoked), budgets, usage and its CSV,
the audit log and its verification, compliance findings, skills, and escaping of user data."""

from __future__ import annotations

import csv
import io
import re
from decimal import Decimal

import httpx

from passerelle.admin.report_format import usd
from passerelle.admin.service import AdminService, CreatedKey
from passerelle.server.app import App
from passerelle.server.skills_gateway import registry_for
from tests.console.conftest import csrf_of
from tests.skills.conftest import skill_files


def admin(app: App) -> AdminService:
    assert app.gateway is not None
    return AdminService(app.gateway.store)


async def new_key(app: App, tenant: str = "acme", name: str = "") -> CreatedKey:
    """A key made outside the console: loaded into this instance's policies before use."""
    assert app.gateway is not None
    created = await admin(app).create_key(tenant, name=name)
    await app.gateway.policies.refresh()
    return created


async def chat(client: httpx.AsyncClient, secret: str, text: str = "Bonjour") -> httpx.Response:
    return await client.post("/v1/messages", headers={"x-api-key": secret}, json={
        "model": "claude-sonnet-4-5", "max_tokens": 32, "messages": [{"role": "user", "content": text}]})


async def test_create_key_shows_the_secret_once_then_revoke(console: httpx.AsyncClient, app: App) -> None:
    token = csrf_of(await console.get("/console/keys"))
    tenant = await console.post("/console/tenants", data={"id": "acme", "name": "ACME", "csrf": token})
    assert tenant.status_code == 201 and "Tenant acme created" in tenant.text
    again = await console.post("/console/tenants", data={"id": "acme", "csrf": token})
    assert again.status_code == 409
    created = await console.post("/console/keys", data={"tenant": "acme", "name": "billing bot", "csrf": token,
                                                        "models": "claude-sonnet-4-5"})
    assert created.status_code == 201
    secret = re.search(r'id="new-secret"[^>]*>(sk-pas-[^<]+)<', created.text)
    assert secret is not None
    assert (await chat(console, secret[1])).status_code == 200  # usable at once on this instance
    listing = await console.get("/console/keys", params={"tenant": "acme"})
    assert "billing bot" in listing.text and secret[1] not in listing.text  # never shown again
    key_id = re.search(r"<code>(key_[0-9a-f]+)</code>", listing.text)
    assert key_id is not None
    revoked = await console.post("/console/keys/revoke", data={"key_id": key_id[1], "csrf": token})
    assert revoked.status_code == 200 and f"Key {key_id[1]} revoked" in revoked.text
    assert (await chat(console, secret[1])).status_code == 401


async def test_keys_are_paged_and_filtered_by_the_store(console: httpx.AsyncClient, app: App) -> None:
    service = admin(app)
    await service.create_tenant("acme")
    await service.create_tenant("beta")
    for i in range(120):
        await service.create_key("acme", name=f"app-{i:03d}")
    await service.create_key("beta", name="the beta one")
    first = await console.get("/console/keys")
    assert first.text.count("Revoke</button>") == 50 and "1-50 of 121" in first.text
    assert 'rel="next"' in first.text and "the beta one" in first.text  # newest first
    last = await console.get("/console/keys", params={"tenant": "acme", "offset": "100"})
    assert last.text.count("Revoke</button>") == 20 and "101-120 of 120" in last.text
    assert 'rel="next"' not in last.text and "app-000" in last.text and "the beta one" not in last.text
    found = await console.get("/console/keys", params={"q": "APP-11"})
    assert "1-10 of 10" in found.text
    none = await console.get("/console/keys", params={"status": "revoked"})
    assert "No key matches" in none.text
    bad = await console.get("/console/keys", params={"status": "zombie"})
    assert bad.status_code == 400 and "status: expected" in bad.text


async def test_user_data_is_escaped(console: httpx.AsyncClient, app: App) -> None:
    await admin(app).create_tenant("acme")
    evil = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    await admin(app).create_key("acme", name=evil)
    page = await console.get("/console/keys", params={"q": '"><svg onload=alert(1)>'})
    assert "<svg onload" not in page.text and "&quot;&gt;&lt;svg onload=alert(1)&gt;" in page.text
    page = await console.get("/console/keys")
    assert "<script>alert" not in page.text and "<img src=x" not in page.text
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page.text
    # Error messages that echo input are escaped too.
    error = await console.get("/console/usage", params={"by": "<b>bold</b>"})
    assert error.status_code == 400 and "<b>bold</b>" not in error.text


async def test_budgets_and_rate_limits_through_the_admin_service(console: httpx.AsyncClient, app: App) -> None:
    await admin(app).create_tenant("acme")
    token = csrf_of(await console.get("/console/keys"))
    saved = await console.post("/console/budgets", data={"scope": "tenant", "scope_id": "acme", "limit_usd": "12.50",
                                                         "period": "month", "mode": "hard", "csrf": token})
    assert saved.status_code == 200 and "12.50 USD per month on tenant acme" in saved.text
    assert '<td class="num">12.50</td><td class="num">0.00</td>' in saved.text  # limit, then spend
    wrong = await console.post("/console/budgets", data={"scope": "tenant", "scope_id": "acme", "limit_usd": "lots",
                                                         "csrf": token})
    assert wrong.status_code == 400 and "limit_usd" in wrong.text
    limit = await console.post("/console/rate-limits", data={"scope": "tenant", "scope_id": "acme", "rpm": "60",
                                                             "csrf": token})
    assert limit.status_code == 200 and "Rate limit rl_" in limit.text
    bad = await console.post("/console/rate-limits", data={"scope": "tenant", "scope_id": "acme", "rpm": "-1",
                                                           "csrf": token})
    assert bad.status_code == 400
    assert [b.limit_usd for b in await admin(app).list_budgets("tenant", "acme")] == [Decimal("12.50")]


async def test_overview_usage_and_csv_show_real_requests(console: httpx.AsyncClient, app: App) -> None:
    await admin(app).create_tenant("acme")
    created = await new_key(app, name="reporter")
    for text in ("one", "two", "three"):
        assert (await chat(console, created.secret, text)).status_code == 200
    assert app.gateway is not None
    await app.gateway.ledger.flush()
    overview = await console.get("/console/")
    assert overview.status_code == 200 and "<svg" in overview.text and "Requests per day" in overview.text
    assert created.key.id in overview.text  # top keys
    assert "p95 latency" in overview.text and "≤" in overview.text
    usage = await console.get("/console/usage", params={"by": "key", "tenant": "acme"})
    assert created.key.id in usage.text
    exported = await console.get("/console/usage.csv", params={"by": "key", "tenant": "acme"})
    assert exported.headers["content-type"].startswith("text/csv")
    assert "attachment" in exported.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [(r["key"], r["requests"]) for r in rows] == [(created.key.id, "3")]
    assert (await console.get("/console/", params={"days": "forever"})).status_code == 400
    # A budget put afterwards shows what the key already spent this month (from the ledger).
    await admin(app).put_budget("key", created.key.id, "5", "month", "hard")
    spent = sum(r.cost_pico for r in (await admin(app).usage("key")).rows)
    keys_page = await console.get("/console/keys")
    assert spent > 0 and f'<td class="num">5</td><td class="num">{usd(spent)}</td>' in keys_page.text


async def test_audit_log_verification_and_compliance(console: httpx.AsyncClient, app: App) -> None:
    await admin(app).create_tenant("acme")
    created = await new_key(app)
    assert (await chat(console, created.secret)).status_code == 200
    assert app.gateway is not None and app.gateway.audit.store is not None
    await app.gateway.audit.flush()
    page = await console.get("/console/audit")
    assert page.status_code == 200 and created.key.id in page.text
    token = csrf_of(page)
    verdict = await console.post("/console/audit/verify", data={"csrf": token})
    assert "Chain intact" in verdict.text and "1 records checked" in verdict.text
    compliance = await console.get("/console/compliance")
    assert "1 audited requests" in compliance.text and "Findings per day" in compliance.text
    assert (await console.get("/console/audit", params={"since": "yesterday-ish"})).status_code == 400


async def test_skills_and_ai_act_pages(console: httpx.AsyncClient) -> None:
    skills = await console.get("/console/skills", params={"q": "pdf"})
    assert skills.status_code == 200 and "Skills marketplace" in skills.text
    missing = await console.get("/console/skills/show", params={"name": "nothing-here"})
    assert missing.status_code in (400, 404) and "Cannot do that" in missing.text
    aiact = await console.get("/console/aiact")
    assert aiact.status_code == 200 and "No purpose registered" in aiact.text


async def test_static_files_and_unknown_pages(console: httpx.AsyncClient) -> None:
    css = await console.get("/console/static/console.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert (await console.get("/console/static/../handler.py")).status_code == 404
    assert (await console.get("/console/nowhere")).status_code == 404
    assert (await console.delete("/console/keys")).status_code == 405


async def test_skills_marketplace_browse_verify_install(console: httpx.AsyncClient, app: App) -> None:
    assert app.gateway is not None
    await admin(app).create_tenant("acme")
    registry = await registry_for(app.gateway)
    files = skill_files("pdf-tools", "Fills R&D PDF forms. Use when asked about PDFs.")
    await registry.publish("acme", files, version="1.0.0", display_title="<script>alert(1)</script>")
    await registry.publish("acme", skill_files("pdf-tools", "Fills R&D PDF forms. Use when asked about PDFs.",
                                               extra={"extra.md": b"more"}), version="1.1.0")
    found = await console.get("/console/skills", params={"tenant": "acme", "q": "pdf"})
    assert "pdf-tools" in found.text and "1.1.0" in found.text and "unsigned" in found.text
    assert "R&amp;D PDF forms" in found.text
    detail = await console.get("/console/skills/show", params={"tenant": "acme", "name": "pdf-tools"})
    assert detail.status_code == 200 and "1.0.0" in detail.text and "intact" in detail.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in detail.text and "<script>alert" not in detail.text
    token = csrf_of(detail)
    done = await console.post("/console/skills/install", data={"tenant": "acme", "name": "pdf-tools",
                                                               "scope": "tenant", "scope_id": "acme", "csrf": token})
    assert done.status_code == 200 and "Installed for tenant acme" in done.text
    wrong = await console.post("/console/skills/install", data={"tenant": "acme", "name": "pdf-tools",
                                                                "scope": "tenant", "scope_id": "other", "csrf": token})
    assert wrong.status_code == 400
    assert len(await registry.installs("acme")) == 1


async def test_compliance_policies_are_set_listed_and_deleted(console: httpx.AsyncClient, app: App) -> None:
    await admin(app).create_tenant("bank")
    created = await new_key(app, "bank")
    marked = "SECRET//NOFORN\nThe range schedule is attached."
    assert (await chat(console, created.secret, marked)).status_code == 200  # no policy yet
    page = await console.get("/console/policies")
    assert page.status_code == 200 and "No tenant or key has a policy of its own." in page.text
    assert "CLASSIFICATION_MARKING=block" in page.text  # the shipped packs and what they act on
    token = csrf_of(page)
    saved = await console.post("/console/policies", data={
        "scope": "key", "scope_id": created.key.id, "packs": "defense", "overrides": "EMAIL=redact",
        "codewords": "Blue Harbor\n\nKestrel Veil", "csrf": token})
    assert saved.status_code == 200 and f"Policy of key {created.key.id} saved." in saved.text
    assert "EMAIL=redact" in saved.text and "Blue Harbor" not in saved.text  # codewords are counted, not shown
    assert (await chat(console, created.secret, marked)).status_code == 403  # applied at once
    effective = await console.get("/console/policies", params={"key": created.key.id})
    assert "Key " + created.key.id in effective.text and "CLASSIFICATION_MARKING" in effective.text
    assert "Route label onprem" in effective.text
    missing = await console.get("/console/policies", params={"key": "key_ghost"})
    assert missing.status_code == 404 and "not found" in missing.text
    refused = await console.post("/console/policies", data={"scope": "tenant", "scope_id": "bank", "packs": "pci",
                                                             "csrf": token})
    assert refused.status_code == 400 and "unknown pack" in refused.text
    bad_pair = await console.post("/console/policies", data={"scope": "tenant", "scope_id": "bank",
                                                              "overrides": "EMAIL", "csrf": token})
    assert bad_pair.status_code == 400 and "TYPE=ACTION" in bad_pair.text
    deleted = await console.post("/console/policies/delete", data={"scope": "key", "scope_id": created.key.id,
                                                                   "csrf": token})
    assert deleted.status_code == 200 and "deleted" in deleted.text
    assert (await chat(console, created.secret, marked)).status_code == 200
    assert (await console.post("/console/policies/delete", data={"scope": "key", "scope_id": created.key.id})
            ).status_code == 403  # no CSRF token
