"""The AI Act admin API: JSON, server-side pagination, the rules as 400s, reports and CSV."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.aiact.harness import ADMIN, KEY, Harness, harness

AUTH = {"x-api-key": ADMIN, "x-passerelle-actor": "ops@bank.example"}
PURPOSE: dict[str, Any] = {
    "id": "credit-scoring", "name": "Credit scoring assistant", "description": "Summaries for credit officers",
    "instructions": "A credit officer reviews every summary", "overseer": "Marie Curie", "owner": "alice",
    "risk_class": "high-risk", "annex_category": "5(b)", "models": ["claude-test"], "retention_days": 400,
    "status": "active"}
HELLO = {"model": "claude-test", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    async with harness(tmp_path) as gw:
        yield gw


async def test_purposes_bindings_and_the_suspend_switch(h: Harness) -> None:
    http = h.http
    assert (await http.post("/admin/aiact/purposes", json=PURPOSE, headers={"x-api-key": KEY})).status_code == 403
    created = await http.post("/admin/aiact/purposes", json=PURPOSE, headers=AUTH)
    assert created.status_code == 201 and created.json()["version"] == 1
    assert created.json()["updated_by"] == "ops@bank.example"
    bad = await http.post("/admin/aiact/purposes", json={**PURPOSE, "id": "x", "risk_class": "prohibited",
                                                          "annex_category": None}, headers=AUTH)
    assert bad.status_code == 400 and "prohibited category" in bad.json()["error"]["message"]
    for i in range(3):
        await http.post("/admin/aiact/purposes", json={**PURPOSE, "id": f"p{i}", "status": "draft"}, headers=AUTH)
    page = (await http.get("/admin/aiact/purposes?limit=2&offset=1", headers=AUTH)).json()
    assert (page["total"], page["limit"], page["offset"]) == (4, 2, 1)
    assert [p["id"] for p in page["data"]] == ["p0", "p1"]
    assert (await http.get("/admin/aiact/purposes?limit=0", headers=AUTH)).status_code == 400
    assert (await http.get("/admin/aiact/purposes/nope", headers=AUTH)).status_code == 404
    bound = await http.post("/admin/aiact/bindings", json={"key_id": "cfg_app", "purpose_id": "credit-scoring"},
                            headers=AUTH)
    assert bound.status_code == 201
    assert (await http.post("/v1/messages", json=HELLO, headers={"x-api-key": KEY})).status_code == 200
    stop = await http.post("/admin/aiact/purposes/credit-scoring/suspend", json={"reason": "audit"}, headers=AUTH)
    assert stop.json() == {"kind": "purpose", "target": "credit-scoring", "suspended": True, "changed": True}
    refused = await http.post("/v1/messages", json=HELLO, headers={"x-api-key": KEY})
    assert refused.status_code == 403 and "suspended" in refused.json()["error"]["message"]
    assert (await http.get("/admin/aiact/purposes/credit-scoring", headers=AUTH)).json()["suspended"] is True
    await http.post("/admin/aiact/purposes/credit-scoring/resume", json={}, headers=AUTH)
    assert (await http.post("/v1/messages", json=HELLO, headers={"x-api-key": KEY})).status_code == 200
    status = await http.post("/admin/aiact/purposes/credit-scoring/status", json={"status": "draft"}, headers=AUTH)
    assert status.json()["version"] == 2
    hist = (await http.get("/admin/aiact/purposes/credit-scoring/history", headers=AUTH)).json()["data"]
    assert [(v["version"], v["purpose"]["status"]) for v in hist] == [(1, "active"), (2, "draft")]
    route = await http.post("/admin/aiact/routes/nowhere/suspend", json={}, headers=AUTH)
    assert route.status_code == 400
    bindings = (await http.get("/admin/aiact/bindings?purpose=credit-scoring", headers=AUTH)).json()
    assert bindings["total"] == 1 and bindings["data"][0]["key_id"] == "cfg_app"
    assert (await http.delete("/admin/aiact/bindings/cfg_app", headers=AUTH)).status_code == 200
    assert (await http.delete("/admin/aiact/bindings/cfg_app", headers=AUTH)).status_code == 404


async def test_registers_report_and_dora_csv(h: Harness) -> None:
    http = h.http
    await http.post("/admin/aiact/purposes", json=PURPOSE, headers=AUTH)
    supplier = await http.post("/admin/aiact/suppliers", json={
        "provider": "simulator", "model": "claude-*", "documentation_url": "https://docs.example/c",
        "training_summary_url": "https://docs.example/t", "code_of_practice": "signed", "lei": "=HYPERLINK()",
        "provider_name": "Example AI SAS", "contract_ref": "MSA-1"}, headers=AUTH)
    assert supplier.status_code == 201 and supplier.json()["documented"] is True
    csv = await http.get("/admin/aiact/suppliers/dora", headers=AUTH)
    assert csv.headers["content-type"].startswith("text/csv")
    lines = csv.text.splitlines()
    assert lines[0].startswith("provider_lei,provider_legal_name") and "'=HYPERLINK()" in lines[1]
    assert "MSA-1" in lines[1] and lines[1].count(",yes,") == 1
    risk = await http.post("/admin/aiact/risks", json={
        "purpose_id": "credit-scoring", "title": "Bias", "likelihood": 2, "severity": 5, "measures": "audit",
        "residual": "low", "review_due": "2020-01-01"}, headers=AUTH)
    assert risk.status_code == 201 and risk.json()["score"] == 10
    own = await http.post(f"/admin/aiact/risks/{risk.json()['id']}/sign-off", json={"reviewer": "alice"},
                          headers=AUTH)
    assert own.status_code == 400 and "not the owner" in own.json()["error"]["message"]
    assert (await http.post(f"/admin/aiact/risks/{risk.json()['id']}/sign-off", json={"reviewer": "bob"},
                            headers=AUTH)).json()["signed_off_by"] == "bob"
    assert [r["id"] for r in (await http.get("/admin/aiact/risks/overdue", headers=AUTH)).json()["data"]] == [
        risk.json()["id"]]
    incident = await http.post("/admin/aiact/incidents", json={
        "purpose_id": "credit-scoring", "title": "Outage of checks", "severity": "death",
        "occurred_at": 1800000000.5, "aware_at": 1800000000.5}, headers=AUTH)
    assert incident.status_code == 201 and incident.json()["deadline"] == 1800000000.5 + 10 * 86400
    listed = (await http.get("/admin/aiact/incidents?purpose=credit-scoring", headers=AUTH)).json()["data"]
    assert listed[0]["state"] == "open"
    report = await http.get("/admin/aiact/purposes/credit-scoring/report", headers=AUTH)
    assert report.status_code == 200 and report.headers["content-type"].startswith("text/html")
    assert "Outage of checks" in report.text and 'id="fines"' in report.text
    assert (await http.get("/admin/aiact/purposes/nope/report", headers=AUTH)).status_code == 404
    bad = await http.post("/admin/aiact/risks", json={"purpose_id": "credit-scoring"}, headers=AUTH)
    assert bad.status_code == 400
