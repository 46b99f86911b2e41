"""The admin API in-process: identities and keys that work (and stop working) at once, policies,
usage reports, and a 4xx with a JSON error for every kind of bad input."""

from __future__ import annotations

import csv
import io
import time
from decimal import Decimal
from typing import Any

import httpx
import pytest

from passerelle.server.app import App
from passerelle.stores.records import UsageRecord
from tests.server.conftest import ADMIN
from tests.server.test_malformed_input import GOOD_A

AUTH = {"x-api-key": ADMIN}


async def post(client: httpx.AsyncClient, path: str, body: Any, status: int = 201) -> Any:
    response = await client.post(path, json=body, headers=AUTH)
    assert response.status_code == status, response.text
    return response.json()


async def get(client: httpx.AsyncClient, path: str, status: int = 200, **params: str) -> Any:
    response = await client.get(path, params=params, headers={"authorization": f"Bearer {ADMIN}"})
    assert response.status_code == status, response.text
    return response.json()


def error_type(response: httpx.Response) -> str:
    body = response.json()
    assert set(body) == {"error"} and body["error"]["message"]
    return str(body["error"]["type"])


async def setup_key(client: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    await post(client, "/admin/tenants", {"id": "acme", "name": "Acme"})
    await post(client, "/admin/teams", {"tenant": "acme", "id": "ml"})
    return dict(await post(client, "/admin/keys", {"tenant": "acme", "team": "ml", "name": "ci", **fields}))


async def call(client: httpx.AsyncClient, secret: str, model: str = "claude-sonnet-4-5") -> httpx.Response:
    return await client.post("/v1/messages", json={**GOOD_A, "model": model},
                             headers={"x-api-key": secret, "anthropic-version": "2023-06-01"})


async def test_a_new_key_works_at_once_and_a_revoked_one_stops_at_once(client: httpx.AsyncClient) -> None:
    created = await setup_key(client, models=["claude-sonnet-*"])
    secret = created["secret"]
    assert secret.startswith("sk-pas-") and created["prefix"] == secret[:12] and created["team"] == "acme/ml"
    assert (await call(client, secret)).status_code == 200
    assert (await call(client, secret, "gpt-4o")).status_code == 403  # not among its models
    revoked = await post(client, f"/admin/keys/{created['id']}/revoke", None, status=200)
    assert revoked["status"] == "revoked" and revoked["revoked_at"]
    denied = await call(client, secret)
    assert denied.status_code == 401 and "revoked" in denied.json()["error"]["message"]


async def test_the_secret_is_shown_only_at_creation(client: httpx.AsyncClient) -> None:
    created = await setup_key(client)
    listing = await client.get("/admin/keys", params={"tenant": "acme"}, headers=AUTH)
    one = await client.get(f"/admin/keys/{created['id']}", headers=AUTH)
    for response in (listing, one):
        assert created["secret"] not in response.text and "sha256" not in response.text
        assert response.headers["cache-control"] == "no-store"
    assert [k["id"] for k in listing.json()["data"]] == [created["id"]]
    assert one.json()["prefix"] == created["prefix"]


async def test_identity_routes(client: httpx.AsyncClient) -> None:
    created = await setup_key(client)
    await post(client, "/admin/tenants", {"id": "acme2"})
    await post(client, "/admin/teams", {"id": "acme2/ml", "metadata": {"cost_center": "42"}})
    assert [t["id"] for t in (await get(client, "/admin/tenants"))["data"]] == ["acme", "acme2"]
    assert (await get(client, "/admin/tenants/acme"))["name"] == "Acme"
    assert [t["id"] for t in (await get(client, "/admin/teams", tenant="acme2"))["data"]] == ["acme2/ml"]
    assert (await get(client, "/admin/teams/acme2/ml"))["metadata"] == {"cost_center": "42"}
    assert (await get(client, "/admin/keys", tenant="acme2"))["data"] == []
    assert len((await get(client, "/admin/keys", tenant="acme", team="ml"))["data"]) == 1
    conflict = await client.delete("/admin/teams/acme/ml", headers=AUTH)  # a live key
    assert conflict.status_code == 409 and error_type(conflict) == "conflict_error"
    await post(client, f"/admin/keys/{created['id']}/revoke", None, status=200)
    assert (await client.delete("/admin/teams/acme/ml", headers=AUTH)).json() == {"id": "acme/ml", "deleted": True}
    assert (await client.delete("/admin/tenants/acme", headers=AUTH)).status_code == 200
    await get(client, "/admin/tenants/acme", status=404)


async def test_budgets_and_rate_limits(client: httpx.AsyncClient, app: App) -> None:
    created = await setup_key(client)
    budget = await post(client, "/admin/budgets", {"scope": "key", "scope_id": created["id"], "limit_usd": 12.34})
    assert budget["limit_usd"] == "12.34" and budget["mode"] == "hard" and budget["period"] == "month"
    replaced = await post(client, "/admin/budgets", {"scope": "key", "scope_id": created["id"], "limit_usd": "20"})
    assert replaced["id"] == budget["id"]
    assert app.gateway is not None
    assert app.gateway.policies.current.budgets[("key", created["id"])][0].limit_usd == Decimal(20)  # live now
    status = await get(client, f"/admin/budgets/{budget['id']}/status")
    assert status["spent_usd"] == "0.00" and status["remaining_usd"] == "20.00"
    assert [b["id"] for b in (await get(client, "/admin/budgets", scope="key"))["data"]] == [budget["id"]]
    limit = await post(client, "/admin/rate-limits", {"scope": "team", "scope_id": "acme/ml", "rpm": 1})
    assert (await call(client, created["secret"])).status_code == 200
    limited = await call(client, created["secret"])
    assert limited.status_code == 429 and "retry-after" in limited.headers
    assert (await client.delete(f"/admin/rate-limits/{limit['id']}", headers=AUTH)).status_code == 200
    assert (await call(client, created["secret"])).status_code == 200
    spent = await get(client, f"/admin/budgets/{budget['id']}/status")
    assert spent["source"] == "counters" and Decimal(spent["spent_usd"]) > 0
    assert Decimal(spent["spent_usd"]) + Decimal(spent["remaining_usd"]) == 20
    assert (await client.delete(f"/admin/budgets/{budget['id']}", headers=AUTH)).status_code == 200
    assert (await get(client, "/admin/budgets"))["data"] == []
    await get(client, f"/admin/budgets/{budget['id']}/status", status=404)


def usage(i: int, tenant: str, model: str, cost: int) -> UsageRecord:
    return UsageRecord(request_id=f"req_seed_{i}", ts=time.time() - 3600 * i, tenant_id=tenant, team_id=None,
                       key_id="key_x", route="messages", model=model, deployment=None, provider=None,
                       upstream_model=None, status=200, latency_ms=1.0, input_tokens=10, cost_pico=cost)


async def test_usage_report_filters_by_tenant_exactly(client: httpx.AsyncClient, app: App) -> None:
    await get(client, "/admin/tenants")  # builds the gateway
    assert app.gateway is not None
    seeded = [usage(i, ("acme", "acme2")[i % 2], ("m1", "m2")[i % 3 == 0], 10**9 * i + 7) for i in range(30)]
    await app.gateway.store.append_usage(seeded)
    report = await get(client, "/admin/usage", by="tenant,model", since="2d", tenant="acme")
    mine = [r for r in seeded if r.tenant_id == "acme"]
    assert {row["tenant"] for row in report["rows"]} == {"acme"}
    assert report["totals"]["requests"] == len(mine)
    assert Decimal(report["totals"]["cost_usd"]) == Decimal(sum(r.cost_pico for r in mine)) / 10**12
    response = await client.get("/admin/usage", params={"by": "model", "format": "csv"}, headers=AUTH)
    assert response.headers["content-type"].startswith("text/csv")
    lines = list(csv.DictReader(io.StringIO(response.text)))
    assert sum(Decimal(line["cost_usd"]) for line in lines) == Decimal(sum(r.cost_pico for r in seeded)) / 10**12
    text = await client.get("/admin/usage", params={"by": "tenant", "format": "text"}, headers=AUTH)
    assert text.text.splitlines()[-1].startswith("TOTAL")


@pytest.mark.parametrize(("method", "path", "body", "status", "kind"), [
    ("POST", "/admin/tenants", b"{", 400, "invalid_request_error"),
    ("POST", "/admin/tenants", b"", 400, "invalid_request_error"),
    ("POST", "/admin/tenants", b"[]", 400, "invalid_request_error"),
    ("POST", "/admin/tenants", b'{"id": "acme", "colour": "red"}', 400, "invalid_request_error"),
    ("POST", "/admin/tenants", b'{"id": 5}', 400, "invalid_request_error"),
    ("POST", "/admin/tenants", b'{"id": "Not A Slug"}', 400, "invalid_request_error"),
    ("POST", "/admin/keys", b'{"tenant": "ghost"}', 404, "not_found_error"),
    ("POST", "/admin/keys", b'{"tenant": "acme", "expires": "yesterday"}', 400, "invalid_request_error"),
    ("POST", "/admin/keys", b'{"tenant": "acme", "routes": ["embeddings"]}', 400, "invalid_request_error"),
    ("POST", "/admin/budgets", b'{"scope": "tenant", "scope_id": "acme", "limit_usd": "-1"}', 400,
     "invalid_request_error"),
    ("POST", "/admin/budgets", b'{"scope": "org", "scope_id": "acme", "limit_usd": "1"}', 400,
     "invalid_request_error"),
    ("POST", "/admin/rate-limits", b'{"scope": "tenant", "scope_id": "acme"}', 400, "invalid_request_error"),
    ("POST", "/admin/rate-limits", b'{"scope": "tenant", "scope_id": "acme", "rpm": "10"}', 400,
     "invalid_request_error"),
    ("GET", "/admin/keys/key_ghost", b"", 404, "not_found_error"),
    ("POST", "/admin/keys/key_ghost/revoke", b"", 404, "not_found_error"),
    ("DELETE", "/admin/budgets/bud_ghost", b"", 404, "not_found_error"),
    ("DELETE", "/admin/rate-limits/rl_ghost", b"", 404, "not_found_error"),
    ("GET", "/admin/nothing", b"", 404, "not_found_error"),
    ("GET", "/admin/keys//revoke", b"", 404, "not_found_error"),
    ("GET", "/admin/usage?by=colour", b"", 400, "invalid_request_error"),
    ("GET", "/admin/usage?since=soon", b"", 400, "invalid_request_error"),
    ("GET", "/admin/usage?format=xml", b"", 400, "invalid_request_error"),
    ("GET", "/admin/keys?tenat=acme", b"", 400, "invalid_request_error"),
    ("PUT", "/admin/tenants", b"{}", 405, "invalid_request_error"),
    ("DELETE", "/admin/keys/key_x", b"", 405, "invalid_request_error"),
])
async def test_bad_input_gets_a_json_4xx(client: httpx.AsyncClient, method: str, path: str, body: bytes,
                                         status: int, kind: str) -> None:
    await post(client, "/admin/tenants", {"id": "acme"})
    response = await client.request(method, path, content=body, headers=AUTH)
    assert response.status_code == status, response.text
    assert error_type(response) == kind
    if status == 405:
        assert response.headers["allow"]


async def test_admin_key_required(client: httpx.AsyncClient) -> None:
    missing = await client.get("/admin/tenants")
    assert missing.status_code == 401 and error_type(missing) == "authentication_error"
    wrong = await client.get("/admin/tenants", headers={"x-api-key": "sk-nope"})
    assert wrong.status_code == 401
    created = await setup_key(client)
    not_admin = await client.post("/admin/tenants", json={"id": "evil"}, headers={"x-api-key": created["secret"]})
    assert not_admin.status_code == 403 and error_type(not_admin) == "permission_error"
    assert [t["id"] for t in (await get(client, "/admin/tenants"))["data"]] == ["acme"]


async def test_body_too_large(client: httpx.AsyncClient) -> None:
    response = await client.post("/admin/tenants", content=b"{" + b" " * 70_000 + b"}", headers=AUTH)
    assert response.status_code == 413 and error_type(response) == "request_too_large"
