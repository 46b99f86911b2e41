"""Compliance policies set at run time through the admin API: a gateway started with no compliance at all
protects a tenant from the next request on, a key's policy layers over its tenant's, a deleted policy stops
applying, and a second instance on the same store applies a change within its refresh interval.  The
official SDK is the client; the simulator's echo, behind a recorder, is the upstream."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest

from passerelle.config import load_config
from passerelle.config.schema import ComplianceConfig
from passerelle.pipeline.auth import Principal, digest
from passerelle.pipeline.compliance import ComplianceStage
from passerelle.server.app import App, create_app
from passerelle.stores.records import CompliancePolicy
from tests.pipeline.conftest import ADMIN as HARNESS_ADMIN
from tests.pipeline.conftest import a_headers, anthropic_body
from tests.pipeline.test_compliance import CARD, MARKED, NIR, PROMPT, assert_protected
from tests.support.inprocess import RecordingUpstream, sdk_http

ADMIN = "sk-admin-compliance-policies"
AUTH = {"x-api-key": ADMIN}
CONFIG = """
server: {{log_level: error}}
store: {{refresh_interval: 0.2}}
providers:
  claude-up: {{type: anthropic, api_key: sk-up, base_url: "{url}"}}
models:
  claude-test: {{deployments: [{{provider: claude-up, model: claude-sonnet-4-5}}]}}
"""


@pytest.fixture
async def upstream() -> AsyncIterator[RecordingUpstream]:
    recorder = RecordingUpstream()
    await recorder.start()
    yield recorder
    await recorder.server.close()


@pytest.fixture
async def instances(tmp_path: Path, upstream: RecordingUpstream) -> AsyncIterator[list[httpx.AsyncClient]]:
    """Two gateways on one data directory (one SQLite store), as two workers or instances would be."""
    path = tmp_path / "passerelle.yaml"
    path.write_text(CONFIG.format(url=upstream.server.url))
    apps: list[App] = []
    clients: list[httpx.AsyncClient] = []
    for _ in range(2):
        app = create_app(config=load_config(path, env={}), data_dir=tmp_path / "data", admin_key_sha256=digest(ADMIN))
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway", timeout=30)
        assert (await client.get("/health")).status_code == 200
        apps.append(app)
        clients.append(client)
    yield clients
    for app, client in zip(apps, clients, strict=True):
        await client.aclose()
        if app.gateway is not None:
            await app.gateway.aclose()


async def admin(client: httpx.AsyncClient, method: str, path: str, body: Any = None, status: int = 200) -> Any:
    response = await client.request(method, path, json=body, headers=AUTH)
    assert response.status_code == status, response.text
    return response.json()


async def make_key(client: httpx.AsyncClient, tenant: str) -> tuple[str, str]:
    if (await client.get(f"/admin/tenants/{tenant}", headers=AUTH)).status_code == 404:
        await admin(client, "POST", "/admin/tenants", {"id": tenant}, 201)
    created = await admin(client, "POST", "/admin/keys", {"tenant": tenant, "name": "app"}, 201)
    return created["secret"], created["id"]


def sdk(client: httpx.AsyncClient, secret: str) -> anthropic.AsyncAnthropic:
    app = client._transport.app  # type: ignore[attr-defined]
    return anthropic.AsyncAnthropic(base_url="http://gateway", api_key=secret, max_retries=0,
                                    http_client=sdk_http(anthropic, app))


async def ask(client: httpx.AsyncClient, secret: str, text: str = PROMPT) -> str:
    answer = await sdk(client, secret).messages.create(model="claude-test", max_tokens=400,
                                                      messages=[{"role": "user", "content": text}])
    block = answer.content[0]
    assert block.type == "text"
    return block.text


async def test_a_policy_set_at_run_time_protects_the_next_request(instances: list[httpx.AsyncClient],
                                                                    upstream: RecordingUpstream) -> None:
    gw = instances[0]
    secret, _ = await make_key(gw, "bank")
    assert await ask(gw, secret) == PROMPT and NIR in upstream.last_text()  # no compliance configured: as sent

    policy = {"packs": ["gdpr", "finance"], "overrides": {"CREDIT_CARD": "pseudonymize"}}
    put = await gw.put("/admin/compliance/policies/tenant/bank", json=policy,
                       headers={**AUTH, "x-passerelle-actor": "bob"})
    assert put.status_code == 200 and put.json()["packs"] == ["gdpr", "finance"] and put.json()["source"] == "admin"
    audit = gw._transport.app.gateway.audit.store  # type: ignore[attr-defined]
    async with audit.snapshot() as view:  # committed before the answer
        changes = [(r.decision, r.key_id, r.extra["policy"]) async for r in view.records() if r.route == "admin"]
    assert changes == [("policy_set", "bob", "tenant:bank")]
    assert await ask(gw, secret) == PROMPT  # the answer comes back restored...
    assert_protected(upstream.last_text())  # ...from an upstream that only saw surrogates

    other, _ = await make_key(gw, "lab")  # another tenant: not its policy
    assert await ask(gw, other) == PROMPT and CARD in upstream.last_text()

    await admin(gw, "DELETE", "/admin/compliance/policies/tenant/bank")
    assert await ask(gw, secret) == PROMPT and NIR in upstream.last_text()


async def test_a_keys_policy_layers_over_its_tenants(instances: list[httpx.AsyncClient],
                                                     upstream: RecordingUpstream) -> None:
    gw = instances[0]
    secret, key_id = await make_key(gw, "bank")
    colleague, _ = await make_key(gw, "bank")
    await admin(gw, "PUT", "/admin/compliance/policies/tenant/bank", {"packs": ["gdpr", "finance"]})
    await admin(gw, "PUT", f"/admin/compliance/policies/key/{key_id}", {"packs": ["defense"]})
    effective = await admin(gw, "GET", f"/admin/compliance/effective/{key_id}")
    assert [(x["layer"], x["source"]) for x in effective["layers"]] == [("defaults", "config"), ("tenant", "admin"),
                                                                        ("key", "admin")]
    assert effective["actions"]["CLASSIFICATION_MARKING"] == "block" and "IBAN" not in effective["actions"]
    with pytest.raises(anthropic.PermissionDeniedError, match="CLASSIFICATION_MARKING"):
        await ask(gw, secret, MARKED)
    assert await ask(gw, colleague, MARKED) == MARKED  # the tenant's packs do not block markings
    sent = len(upstream.received)
    await admin(gw, "PUT", f"/admin/compliance/policies/key/{key_id}",
                {"overrides": {"CLASSIFICATION_MARKING": "block"}})
    with pytest.raises(anthropic.PermissionDeniedError):  # the tenant's packs, the key's override on top
        await ask(gw, secret, MARKED)
    assert len(upstream.received) == sent  # blocked requests never left


async def test_another_instance_applies_a_change_within_its_refresh_interval(
        instances: list[httpx.AsyncClient], upstream: RecordingUpstream) -> None:
    first, second = instances
    secret, _ = await make_key(first, "bank")
    await asyncio.sleep(0.5)  # the key reaches the second instance at its next poll
    assert await ask(second, secret) == PROMPT and NIR in upstream.last_text()
    await admin(first, "PUT", "/admin/compliance/policies/tenant/bank", {"packs": ["health"]})
    started = time.monotonic()
    while NIR in upstream.last_text():
        assert time.monotonic() - started < 1.0, "the second instance did not apply the policy within a second"
        await asyncio.sleep(0.05)
        await ask(second, secret)
    assert "FR_NIR-" in upstream.last_text()  # the health pack pseudonymizes the NIR (and masks the card)


async def test_refusals_in_the_admin_apis_error_shape(instances: list[httpx.AsyncClient]) -> None:
    gw = instances[0]
    await make_key(gw, "bank")
    for path, body, status, kind in (
            ("tenant/bank", {"packs": ["pci"]}, 400, "invalid_request_error"),
            ("tenant/bank", {"packs": "finance"}, 400, "invalid_request_error"),
            ("tenant/bank", {"packs": ["gdpr"], "extra": 1}, 400, "invalid_request_error"),
            ("tenant/nobody", {"packs": ["gdpr"]}, 404, "not_found_error"),
            ("team/bank", {"packs": ["gdpr"]}, 400, "invalid_request_error")):
        response = await gw.put(f"/admin/compliance/policies/{path}", json=body, headers=AUTH)
        assert response.status_code == status, response.text
        assert response.json()["error"]["type"] == kind
    assert (await gw.put("/admin/compliance/policies/tenant/bank", json={"packs": ["gdpr"]})).status_code == 401
    assert (await admin(gw, "GET", "/admin/compliance/policies"))["data"] == []
    packs = (await admin(gw, "GET", "/admin/compliance/packs"))["data"]
    assert [p["name"] for p in packs] == ["finance", "health", "defense", "gdpr"]


async def test_an_update_older_than_the_last_applied_changes_nothing() -> None:
    """Two refreshes racing (the poll and an admin write) may finish out of order: the newer policies stay."""
    stage = ComplianceStage(ComplianceConfig(), lambda: b"s" * 32)
    who = Principal(key_id="key_1", tenant_id="bank", team_id=None, name="app")
    assert not stage.enabled and stage.policy_for(who) is None
    await stage.update(5, [CompliancePolicy("tenant", "bank", ("finance",))])
    compiled = stage.policy_for(who)
    assert stage.enabled and compiled is not None and compiled[0].packs == ("finance",)
    await stage.update(4, [])  # an older snapshot, applied late
    assert stage.policy_for(who) is not None
    await stage.update(6, [CompliancePolicy("key", "key_1", ("defense",))])
    compiled = stage.policy_for(who)
    assert compiled is not None and compiled[0].packs == ("defense",)  # the tenant's policy is gone
    await stage.update(7, [])
    assert not stage.enabled and stage.policy_for(who) is None


async def test_a_policy_in_either_store_blocks_and_its_deletion_lifts_it(make_harness: Any) -> None:
    """The same through the embedded store and through PostgreSQL + Redis (the harness's two backends)."""
    harness = await make_harness()
    await harness.tenant("bank")
    secret, key_id = await harness.key("bank")
    auth = {"x-api-key": HARNESS_ADMIN}
    body = anthropic_body(MARKED)
    assert (await harness.client.post("/v1/messages", json=body, headers=a_headers(secret))).status_code == 200
    put = await harness.client.put(f"/admin/compliance/policies/key/{key_id}", json={"packs": ["defense"]},
                                   headers=auth)
    assert put.status_code == 200, put.text
    blocked = await harness.client.post("/v1/messages", json=body, headers=a_headers(secret))
    assert blocked.status_code == 403 and "CLASSIFICATION_MARKING" in blocked.json()["error"]["message"]
    assert (await harness.client.delete(f"/admin/compliance/policies/key/{key_id}", headers=auth)).status_code == 200
    assert (await harness.client.post("/v1/messages", json=body, headers=a_headers(secret))).status_code == 200
    assert await harness.gw.store.list_compliance_policies() == []


async def test_a_config_file_key_takes_its_tenants_stored_policy_and_shows_it(tmp_path: Path,
                                                                              upstream: RecordingUpstream) -> None:
    path = tmp_path / "passerelle.yaml"
    path.write_text(CONFIG.format(url=upstream.server.url)
                    + "keys:\n  - {name: svc, key: sk-svc-from-the-file-0123, tenant: bank}\n")
    app = create_app(config=load_config(path, env={}), data_dir=tmp_path / "data", admin_key_sha256=digest(ADMIN))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway") as gw:
        try:
            await admin(gw, "POST", "/admin/tenants", {"id": "bank"}, 201)
            await admin(gw, "PUT", "/admin/compliance/policies/tenant/bank",
                        {"packs": ["gdpr", "finance"], "overrides": {"CREDIT_CARD": "pseudonymize"}})
            assert await ask(gw, "sk-svc-from-the-file-0123") == PROMPT  # restored for the caller...
            assert NIR not in upstream.last_text()  # ...after the upstream saw surrogates
            effective = await admin(gw, "GET", "/admin/compliance/effective/cfg_svc")
            assert (effective["tenant"], [x["layer"] for x in effective["layers"]]) == ("bank", ["defaults", "tenant"])
            await admin(gw, "GET", "/admin/compliance/effective/cfg_nobody", status=404)
        finally:
            assert app.gateway is not None
            await app.gateway.aclose()
