"""The AI Act registry page: purposes paged, the suspend switch refusing and restoring traffic at once,
the report and the DORA register downloaded, purpose text escaped."""

from __future__ import annotations

from typing import Any

import httpx

from passerelle.server.app import App
from tests.console.conftest import ADMIN, csrf_of
from tests.console.test_pages import chat, new_key

AUTH = {"x-api-key": ADMIN}
PURPOSE: dict[str, Any] = {
    "id": "credit-scoring", "name": "Credit <b>scoring</b>", "description": "Summaries for credit officers",
    "instructions": "A credit officer reviews every summary", "overseer": "Marie Curie", "owner": "alice",
    "risk_class": "high-risk", "annex_category": "5(b)", "retention_days": 400, "status": "active"}


async def test_suspend_switch_report_and_registers(console: httpx.AsyncClient, app: App) -> None:
    await admin_api(console, "/admin/tenants", {"id": "acme"})
    created = await new_key(app)
    await admin_api(console, "/admin/aiact/purposes", PURPOSE)
    for i in range(55):
        await admin_api(console, "/admin/aiact/purposes", {**PURPOSE, "id": f"p{i:02d}", "status": "draft"})
    await admin_api(console, "/admin/aiact/bindings", {"key_id": created.key.id, "purpose_id": "credit-scoring"})
    await admin_api(console, "/admin/aiact/suppliers", {"provider": "simulator", "model": "claude-*",
                                                       "documentation_url": "https://example.com/doc"})
    assert (await chat(console, created.secret)).status_code == 200

    listing = await console.get("/console/aiact")
    assert listing.status_code == 200 and "1-50 of 56" in listing.text and 'rel="next"' in listing.text
    assert "Credit &lt;b&gt;scoring&lt;/b&gt;" in listing.text and "<b>scoring" not in listing.text
    drafts = await console.get("/console/aiact", params={"status": "draft", "offset": "50"})
    assert "51-55 of 55" in drafts.text
    assert (await console.get("/console/aiact", params={"status": "bogus"})).status_code == 400

    token = csrf_of(listing)
    no_reason = await console.post("/console/aiact/suspend", data={"kind": "purpose", "target": "credit-scoring",
                                                                   "reason": " ", "csrf": token})
    assert no_reason.status_code == 400
    forged = await console.post("/console/aiact/suspend", data={"kind": "purpose", "target": "credit-scoring",
                                                                "reason": "x"})
    assert forged.status_code == 403
    stopped = await console.post("/console/aiact/suspend", data={"kind": "purpose", "target": "credit-scoring",
                                                                 "reason": "model review", "csrf": token})
    assert stopped.status_code == 200 and "suspended: its requests are refused" in stopped.text
    refused = await chat(console, created.secret)
    assert refused.status_code == 403 and "suspended" in refused.json()["error"]["message"]
    unknown = await console.post("/console/aiact/suspend", data={"kind": "purpose", "target": "nope",
                                                                 "reason": "x", "csrf": token})
    assert unknown.status_code == 404
    resumed = await console.post("/console/aiact/resume", data={"kind": "purpose", "target": "credit-scoring",
                                                                "csrf": token})
    assert "credit-scoring is resumed" in resumed.text
    assert (await chat(console, created.secret)).status_code == 200

    report = await console.get("/console/aiact/report", params={"purpose": "credit-scoring"})
    assert report.status_code == 200 and "attachment" in report.headers["content-disposition"]
    assert "Marie Curie" in report.text and "<html" in report.text.lower()
    assert (await console.get("/console/aiact/report", params={"purpose": "nope"})).status_code == 404
    dora = await console.get("/console/aiact/dora.csv")
    assert dora.headers["content-type"].startswith("text/csv") and "claude-*" in dora.text


async def admin_api(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> None:
    response = await client.post(path, json=body, headers=AUTH)
    assert response.status_code == 201, response.text
