"""The admin service over both real stores: identities, secrets, policies, reports."""

from __future__ import annotations

import calendar
from decimal import Decimal
from typing import Any

import pytest

from passerelle.admin.report_format import usd
from passerelle.admin.service import AdminError, AdminService, created_key_view, key_view
from passerelle.pipeline.auth import digest
from passerelle.stores.base import Store
from passerelle.stores.records import UsageRecord

NOW = 1_790_000_000.0  # 2026-09-21T...Z
DAY = 86_400.0


@pytest.fixture
def admin(store: Store) -> AdminService:
    return AdminService(store, clock=lambda: NOW)


async def refused(status: int, call: Any) -> str:
    with pytest.raises(AdminError) as info:
        await call
    assert info.value.status == status, info.value.message
    return info.value.message


async def org(admin: AdminService) -> None:
    await admin.create_tenant("acme", "Acme Corp", {"plan": "pro"})
    await admin.create_tenant("acme2")
    await admin.create_team("ml", tenant="acme")
    await admin.create_team("acme2/ml")


async def test_key_secret_is_returned_once_and_stored_as_digest(admin: AdminService, store: Store) -> None:
    await org(admin)
    created = await admin.create_key("acme", "ml", name="ci", models=["claude-*"], routes=["messages"],
                                     expires="90d", metadata={"owner": "bob"})
    secret = created.secret
    assert secret.startswith("sk-pas-") and len(secret) > 40
    stored = await store.get_key(created.key.id)
    assert stored.key_sha256 == digest(secret) and stored.prefix == secret[:12]
    assert stored.team_id == "acme/ml" and stored.tenant_id == "acme"
    assert stored.expires_at == NOW + 90 * DAY and stored.models == ("claude-*",) and stored.routes == ("messages",)
    assert created_key_view(created)["secret"] == secret
    for view in [key_view(await admin.get_key(created.key.id)), *map(key_view, await admin.list_keys("acme"))]:
        assert secret not in repr(view) and stored.key_sha256 not in repr(view)
        assert "secret" not in view and "key_sha256" not in view
    other = await admin.create_key("acme", name="second")
    assert other.secret != secret and other.key.id != created.key.id and other.key.team_id is None


async def test_team_references(admin: AdminService) -> None:
    await org(admin)
    created = await admin.create_key(team="acme2/ml")  # the tenant follows from the team
    assert created.key.tenant_id == "acme2"
    assert "does not belong" in await refused(400, admin.create_key("acme", "acme2/ml"))
    assert "<tenant>/ml" in await refused(400, admin.create_key(team="ml"))
    assert "tenant" in await refused(400, admin.create_key())
    await refused(404, admin.create_key("acme", "nope"))
    await refused(404, admin.create_key("ghost"))
    await refused(404, admin.create_team("x", tenant="ghost"))
    await refused(409, admin.create_team("acme/ml"))
    await refused(400, admin.create_team("acme/Bad Slug"))


async def test_identity_validation_and_conflicts(admin: AdminService) -> None:
    await org(admin)
    await refused(409, admin.create_tenant("acme"))
    for bad in ("", "Acme", "-x", "a/b", "x" * 64):
        await refused(400, admin.create_tenant(bad))
    await refused(400, admin.create_tenant("ok", metadata={"k": 1}))  # type: ignore[dict-item]
    await refused(400, admin.create_key("acme", routes=["messages", "embeddings"]))
    await refused(400, admin.create_key("acme", expires="2020-01-01"))
    await refused(400, admin.create_key("acme", expires="soon"))
    await refused(409, admin.delete_tenant("acme"))  # it still has a team
    await refused(404, admin.delete_tenant("ghost"))
    await refused(404, admin.get_key("key_ghost"))
    await refused(404, admin.revoke_key("key_ghost"))
    await refused(404, admin.delete_team("acme/ghost"))


async def test_revocation_is_idempotent_and_frees_the_team(store: Store) -> None:
    clock = [NOW]
    admin = AdminService(store, clock=lambda: clock[0])
    await org(admin)
    created = await admin.create_key("acme", "acme/ml")
    await refused(409, admin.delete_team("acme/ml"))  # a live key
    first = await admin.revoke_key(created.key.id)
    clock[0] += 60
    again = await admin.revoke_key(created.key.id)
    assert first.revoked_at == again.revoked_at == NOW
    assert key_view(again)["status"] == "revoked"
    await admin.delete_team("ml", tenant="acme")
    assert [t.id for t in await admin.list_teams("acme")] == []


async def test_list_filters_are_exact(admin: AdminService) -> None:
    await org(admin)
    await admin.create_tenant("acm")
    a = await admin.create_key("acme", "ml")
    b = await admin.create_key("acme2", "ml")
    c = await admin.create_key("acm")
    assert {k.id for k in await admin.list_keys("acme")} == {a.key.id}
    assert {k.id for k in await admin.list_keys("acm")} == {c.key.id}
    assert {k.id for k in await admin.list_keys(team="acme2/ml")} == {b.key.id}
    assert {k.id for k in await admin.list_keys("acme", "ml")} == {a.key.id}
    assert {k.id for k in await admin.list_keys()} == {a.key.id, b.key.id, c.key.id}
    assert [t.id for t in await admin.list_teams("acme")] == ["acme/ml"]
    assert {t.id for t in await admin.list_tenants()} == {"acme", "acme2", "acm"}


async def test_budgets_are_exact_and_replaced_by_scope_period_mode(admin: AdminService) -> None:
    await org(admin)
    key = (await admin.create_key("acme")).key
    hard = await admin.put_budget("key", key.id, "12.345678901234", "month")
    assert hard.limit_usd == Decimal("12.345678901234") and hard.mode == "hard" and hard.id.startswith("bud_")
    raised = await admin.put_budget("key", key.id, "20", "month")
    assert raised.id == hard.id and raised.limit_usd == Decimal("20")
    soft = await admin.put_budget("key", key.id, Decimal("15.5"), "month", "soft", "https://hooks.example/b")
    daily = await admin.put_budget("tenant", "acme", 3, "day")
    assert len({hard.id, soft.id, daily.id}) == 3
    assert {b.id for b in await admin.list_budgets("key", key.id)} == {hard.id, soft.id}
    assert [b.id for b in await admin.list_budgets(scope="tenant")] == [daily.id]
    for bad in ("0", "-1", "abc", "NaN", "Infinity", "0.0000000000001", 1.5, "", None, True):
        await refused(400, admin.put_budget("key", key.id, bad))
    await refused(400, admin.put_budget("key", key.id, "1", period="week"))
    await refused(400, admin.put_budget("org", "acme", "1"))
    await refused(400, admin.put_budget("tenant", "acme", "1", mode="hard", webhook="https://x.example"))
    await refused(400, admin.put_budget("tenant", "acme", "1", mode="soft", webhook="ftp://x"))
    await refused(404, admin.put_budget("tenant", "ghost", "1"))
    await refused(404, admin.put_budget("team", "acme/ghost", "1"))
    by_id = await admin.put_budget("key", key.id, "30", "month", budget_id=hard.id)
    assert by_id.id == hard.id and by_id.limit_usd == 30
    assert "delete it" in await refused(409, admin.put_budget("tenant", "acme", "1", budget_id=hard.id))
    await admin.delete_budget(soft.id)
    await refused(404, admin.delete_budget(soft.id))


async def test_rate_limits(admin: AdminService) -> None:
    await org(admin)
    limit = await admin.put_rate_limit("team", "acme/ml", rpm=60)
    same = await admin.put_rate_limit("team", "acme/ml", rpm=120, tpm=10_000)
    per_model = await admin.put_rate_limit("team", "acme/ml", model="claude-haiku-4-5", concurrent=2)
    assert same.id == limit.id and same.rpm == 120 and same.tpm == 10_000 and same.concurrent is None
    assert per_model.id != limit.id
    assert {r.id for r in await admin.list_rate_limits("team", "acme/ml")} == {limit.id, per_model.id}
    assert "at least one" in await refused(400, admin.put_rate_limit("team", "acme/ml"))
    await refused(400, admin.put_rate_limit("team", "acme/ml", rpm=0))
    await refused(400, admin.put_rate_limit("team", "acme/ml", tpm=-5))
    await refused(400, admin.put_rate_limit("tenant", "acme", rpm=1.5))  # type: ignore[arg-type]
    await refused(404, admin.put_rate_limit("key", "key_ghost", rpm=1))
    await refused(409, admin.put_rate_limit("tenant", "acme", rpm=5, limit_id=limit.id))
    await admin.delete_rate_limit(limit.id)
    await refused(404, admin.delete_rate_limit(limit.id))


def record(i: int, ts: float, tenant: str, model: str, cost: int, **kw: Any) -> UsageRecord:
    return UsageRecord(request_id=f"req_{i}", ts=ts, tenant_id=tenant, team_id=None, key_id=f"key_{tenant}",
                       route="messages", model=model, deployment=f"{model}#0", provider="anthropic",
                       upstream_model=model, status=kw.pop("status", 200), latency_ms=10.0,
                       input_tokens=100 + i, output_tokens=10 * i, cost_pico=cost, **kw)


async def test_usage_report_matches_the_ledger(admin: AdminService, store: Store) -> None:
    records = [record(i, NOW - DAY * (i % 40) - 1, ("acme", "acme2", "acm")[i % 3], ("m1", "m2")[i % 2],
                      cost=1_234_567 * i + 1, status=500 if i % 7 == 0 else 200) for i in range(90)]
    await store.append_usage(records)
    report = await admin.usage("tenant,model", since="30d", tenant="acme")
    inside = [r for r in records if r.tenant_id == "acme" and r.ts >= NOW - 30 * DAY]
    assert report.by == ("tenant", "model") and report.since == NOW - 30 * DAY
    assert {row.group["tenant"] for row in report.rows} == {"acme"}
    totals = report.totals()
    assert totals.requests == len(inside)
    assert totals.cost_pico == sum(r.cost_pico for r in inside)
    assert totals.input_tokens == sum(r.input_tokens for r in inside)
    assert totals.errors == sum(r.status >= 400 for r in inside)
    for row in report.rows:
        group = [r for r in inside if r.model == row.group["model"]]
        assert row.requests == len(group) and row.cost_pico == sum(r.cost_pico for r in group)
    assert [row.group["model"] for row in report.rows] == ["m1", "m2"]  # sorted by group
    everything = await admin.usage()
    assert everything.totals().cost_pico == sum(r.cost_pico for r in records)
    window = await admin.usage("day", since="2026-09-01", until="2026-09-10T00:00:00Z")
    start, end = calendar.timegm((2026, 9, 1, 0, 0, 0)), calendar.timegm((2026, 9, 10, 0, 0, 0))
    assert (window.since, window.until) == (start, end)
    assert window.totals().requests == sum(start <= r.ts < end for r in records)
    days = [str(row.group["day"]) for row in window.rows]
    assert days == sorted(set(days))
    assert Decimal(usd(everything.totals().cost_pico)) == Decimal(sum(r.cost_pico for r in records)) / 10**12


async def test_usage_validation(admin: AdminService) -> None:
    assert "unknown dimension" in await refused(400, admin.usage("tenant,colour"))
    await refused(400, admin.usage("tenant,tenant"))
    await refused(400, admin.usage(since="last tuesday"))
    assert "after since" in await refused(400, admin.usage(since="1d", until="2d"))
    assert (await admin.usage(tenant="nobody")).totals().requests == 0
