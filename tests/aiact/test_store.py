"""The AI Act store on SQLite and PostgreSQL: versions, bindings, switches, alerts, registers."""

from __future__ import annotations

import dataclasses

import pytest

from passerelle.aiact.records import Alert, Supplier, Suspension
from passerelle.aiact.registry import AiActRegistry
from passerelle.aiact.rules import RuleError
from passerelle.aiact.store import SQLAiActStore
from passerelle.stores.base import NotFound
from tests.aiact.conftest import credit_scoring


async def test_every_change_is_a_new_version_and_bumps_the_registry_version(registry: AiActRegistry,
                                                                            aiact_store: SQLAiActStore) -> None:
    start = await aiact_store.version()
    first = await registry.put_purpose(credit_scoring(status="draft"), "alice")
    second = await registry.set_status("credit-scoring", "active", "bob")
    assert (first.version, second.version) == (1, 2)
    assert await aiact_store.version() == start + 2
    history = await aiact_store.purpose_history("credit-scoring")
    assert [(v.version, v.purpose.status, v.actor) for v in history] == [(1, "draft", "alice"), (2, "active", "bob")]
    assert (await aiact_store.get_purpose("credit-scoring")).status == "active"
    page = await aiact_store.list_purposes("active", 10, 0)
    assert page.total == 1 and page.items[0].id == "credit-scoring"
    assert (await aiact_store.list_purposes("draft", 10, 0)).total == 0


async def test_a_prohibited_purpose_cannot_be_activated(registry: AiActRegistry, aiact_store: SQLAiActStore) -> None:
    scoring = credit_scoring(id="social-scoring", risk_class="prohibited", annex_category=None, status="draft")
    await registry.put_purpose(scoring, "alice")
    with pytest.raises(RuleError, match="prohibited category"):
        await registry.set_status("social-scoring", "active", "alice")
    with pytest.raises(RuleError, match="prohibited"):
        await registry.put_purpose(dataclasses.replace(scoring, id="other", status="active"), "alice")
    assert (await aiact_store.get_purpose("social-scoring")).status == "draft"


async def test_high_risk_needs_its_annex_category_and_six_months_of_records(registry: AiActRegistry) -> None:
    with pytest.raises(RuleError, match="Annex III"):
        await registry.put_purpose(credit_scoring(annex_category=None), "alice")
    with pytest.raises(RuleError, match="six months"):
        await registry.put_purpose(credit_scoring(retention_days=90), "alice")


async def test_bindings_switches_and_alerts(registry: AiActRegistry, aiact_store: SQLAiActStore) -> None:
    await registry.put_purpose(credit_scoring(), "alice")
    with pytest.raises(NotFound):
        await registry.bind_key("key_1", "nope")
    await registry.bind_key("key_1", "credit-scoring", "5(b)")
    await registry.bind_key("key_2", "credit-scoring")
    page = await aiact_store.list_bindings("credit-scoring", 1, 1)
    assert page.total == 2 and [b.key_id for b in page.items] == ["key_2"]
    assert await registry.suspend("purpose", "credit-scoring", "model drift", "ops") is True
    assert await registry.suspend("purpose", "credit-scoring", "again", "ops") is False
    assert await registry.suspend("route", "chat_completions", "", "ops") is True
    with pytest.raises(RuleError, match="route"):
        await registry.suspend("route", "nowhere", "", "ops")
    snap = await aiact_store.snapshot()
    assert {(s.kind, s.target) for s in snap.suspensions} == {("purpose", "credit-scoring"),
                                                              ("route", "chat_completions")}
    assert {b.key_id: b.annex_use for b in snap.bindings} == {"key_1": "5(b)", "key_2": None}
    assert await registry.resume("route", "chat_completions", "ops") is True
    assert [s.target for s in await aiact_store.list_suspensions()] == ["credit-scoring"]
    alert = Alert("a1", "role_drift", "key_1", "credit-scoring", "2026-11-27", "drift", 1.0)
    assert await aiact_store.add_alert(alert) is True
    assert await aiact_store.add_alert(dataclasses.replace(alert, id="a2")) is False  # once per day
    assert (await aiact_store.list_alerts("role_drift", 10, 0)).total == 1
    assert await aiact_store.unbind_key("key_2") is True
    assert await aiact_store.unbind_key("key_2") is False


async def test_supplier_register(registry: AiActRegistry, aiact_store: SQLAiActStore) -> None:
    with pytest.raises(RuleError, match="URL"):
        await registry.put_supplier(Supplier("anthropic", "claude-*", documentation_url="ftp://x"))
    await registry.put_supplier(Supplier("anthropic", "claude-*", "https://docs.example/claude",
                                         "https://docs.example/claude-training", "signed", "eu"))
    await registry.put_supplier(Supplier("openai", "gpt-4o", "https://docs.example/gpt"))
    listed = await aiact_store.list_suppliers()
    assert [(s.provider, s.model, s.documented) for s in listed] == [("anthropic", "claude-*", True),
                                                                      ("openai", "gpt-4o", False)]
    await aiact_store.delete_supplier("openai", "gpt-4o")
    with pytest.raises(NotFound):
        await aiact_store.delete_supplier("openai", "gpt-4o")
    assert Suspension  # the records module exports what the snapshot holds
