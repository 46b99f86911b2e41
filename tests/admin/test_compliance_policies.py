"""Compliance policies through the admin service, over both real stores: every refusal names its reason, the
config file's policies cannot be overridden, and a tenant's new packs are checked with its keys' policies."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path
from typing import Any, cast

import pytest

from passerelle.admin.compliance import CompliancePolicies, packs_view
from passerelle.admin.service import AdminError
from passerelle.audit.chain import GENESIS, averify
from passerelle.audit.sqlite import SQLiteAuditStore
from passerelle.audit.writer import AuditLog
from passerelle.compliance.policy import load_pack
from passerelle.config.schema import AuditConfig, ComplianceConfig, Config, KeyConfig, PolicyConfig
from passerelle.stores.base import Store
from passerelle.stores.records import CompliancePolicy
from tests.admin.test_service import refused
from tests.stores.conftest import key, tenant

NOW = 1_790_000_000.0
CONFIG = Config(compliance=ComplianceConfig(packs=["gdpr"], tenants={"filed": PolicyConfig(packs=["health"])},
                                            keys={"cfg-key": PolicyConfig(packs=["finance"])}))


@pytest.fixture
async def policies(store: Store) -> CompliancePolicies:
    for tenant_id in ("acme", "filed"):
        await store.create_tenant(tenant(tenant_id))
    await store.create_key(key("key_1", "acme"))
    return CompliancePolicies(store, CONFIG, clock=lambda: NOW)


async def test_set_list_and_delete(policies: CompliancePolicies) -> None:
    stored = await policies.put("tenant", "acme", ["finance", "finance"], {"EMAIL": "redact"}, ["Blue  Harbor"])
    assert stored.packs == ("finance",) and stored.codewords == ("Blue Harbor",) and stored.updated_at == NOW
    await policies.put("key", "key_1", None, {"PHONE": "allow"})
    listed = await policies.list()
    assert [(v["scope"], v["scope_id"], v["source"]) for v in listed] == [
        ("key", "cfg-key", "config"), ("key", "key_1", "admin"), ("tenant", "acme", "admin"),
        ("tenant", "filed", "config")]
    assert (await policies.get("key", "key_1"))["packs"] is None
    assert [v["scope_id"] for v in await policies.list("tenant")] == ["acme", "filed"]
    await policies.delete("key", "key_1")
    assert "not found" in await refused(404, policies.delete("key", "key_1"))
    assert "no compliance policy" in await refused(404, policies.get("key", "key_1"))


async def test_bad_input_is_refused_with_its_reason(policies: CompliancePolicies) -> None:
    assert "unknown pack 'pci'" in await refused(400, policies.put("tenant", "acme", ["pci"]))
    assert "unknown entity type 'CARD'" in await refused(400, policies.put("tenant", "acme", [], {"CARD": "block"}))
    assert "unknown action 'drop'" in await refused(400, policies.put("tenant", "acme", [], {"EMAIL": "drop"}))
    assert "one string" in await refused(400, policies.put("tenant", "acme", [], {}, "Blue Harbor"))
    assert "scope" in await refused(400, policies.put("team", "acme/ml", ["gdpr"]))
    assert "not found" in await refused(404, policies.put("tenant", "nobody", ["gdpr"]))
    assert "not found" in await refused(404, policies.put("key", "key_404", ["gdpr"]))
    assert await policies.store.list_compliance_policies() == []


async def test_the_config_files_policies_are_changed_in_the_file(policies: CompliancePolicies,
                                                                 store: Store) -> None:
    assert "config file" in await refused(409, policies.put("tenant", "filed", ["finance"]))
    assert "config file" in await refused(409, policies.delete("tenant", "filed"))
    await store.create_key(dataclasses.replace(key("key_2", "acme"), name="cfg-key"))  # the file names it by name
    assert "config file" in await refused(409, policies.put("key", "key_2", ["defense"]))


async def test_layers_that_would_not_make_a_policy_are_refused(policies: CompliancePolicies) -> None:
    # A 'route' action needs the label of a pack that routes; the key's override alone has none to use.
    await policies.put("tenant", "acme", ["defense"])
    await policies.put("key", "key_1", None, {"EMAIL": "route"})  # routes with the tenant's 'onprem' label
    message = await refused(409, policies.put("tenant", "acme", ["gdpr"]))
    assert "key 'key_1'" in message and "route_label" in message and "EMAIL" in message
    assert (await policies.get("tenant", "acme"))["packs"] == ["defense"]



async def test_a_tenants_policy_its_keys_rely_on_cannot_be_deleted(policies: CompliancePolicies) -> None:
    await policies.put("tenant", "acme", ["defense"])
    await policies.put("key", "key_1", None, {"EMAIL": "route"})  # routes with the tenant's 'onprem' label
    message = await refused(409, policies.delete("tenant", "acme"))
    assert "key 'key_1'" in message and "route_label" in message
    assert (await policies.get("tenant", "acme"))["packs"] == ["defense"]
    await policies.delete("key", "key_1")  # once the key no longer relies on it, the tenant's goes
    await policies.delete("tenant", "acme")
    assert await policies.store.list_compliance_policies() == []


async def test_concurrent_changes_that_clash_cannot_both_land(policies: CompliancePolicies, store: Store) -> None:
    """Two admins, two instances: a key's 'route' relying on its tenant's pack, and the tenant's packs changed
    to ones without a route label.  Each is fine alone; together the key's requests would be refused."""
    await policies.put("tenant", "acme", ["defense"])
    both_writing = asyncio.Barrier(2)  # the two writes reach the store together, after both requests were read

    class Instance:
        def __getattr__(self, name: str) -> Any:
            return getattr(store, name)

        async def put_compliance_policy(self, *args: Any) -> CompliancePolicy:
            await both_writing.wait()
            return await store.put_compliance_policy(*args)

    first, second = (CompliancePolicies(cast(Store, Instance()), CONFIG, clock=lambda: NOW) for _ in range(2))
    outcomes = await asyncio.gather(first.put("key", "key_1", None, {"EMAIL": "route"}),
                                    second.put("tenant", "acme", ["gdpr"]), return_exceptions=True)
    refusals = [o for o in outcomes if isinstance(o, AdminError)]
    assert len(refusals) == 1 and refusals[0].status == 409, outcomes
    assert not [o for o in outcomes if isinstance(o, BaseException) and not isinstance(o, AdminError)]
    view = await policies.effective("key_1")  # the layers still make a policy: the key's requests are served
    assert view["scanned"]


async def test_the_config_files_keys_are_checked_and_shown_too(store: Store) -> None:
    """A key declared in the config file (``keys:``) layers over its tenant's stored policy like any other."""
    await store.create_tenant(tenant("acme"))
    config = Config(compliance=ComplianceConfig(packs=["defense"],
                                                keys={"svc": PolicyConfig(overrides={"EMAIL": "route"})}),
                    keys=[KeyConfig(name="svc", key="sk-svc-secret", tenant="acme")])
    policies = CompliancePolicies(store, config, clock=lambda: NOW)
    message = await refused(409, policies.put("tenant", "acme", ["gdpr"]))  # svc's 'route' would lose its label
    assert "key 'cfg_svc'" in message and "route_label" in message
    await policies.put("tenant", "acme", ["finance", "defense"])
    view = await policies.effective("cfg_svc")
    assert (view["key_id"], view["tenant"]) == ("cfg_svc", "acme")
    assert [(x["layer"], x["source"]) for x in view["layers"]] == [
        ("defaults", "config"), ("tenant", "admin"), ("key", "config")]
    assert view["actions"]["EMAIL"] == "route" and view["route_label"] == "onprem"
    assert "not found" in await refused(404, policies.effective("cfg_nobody"))

def test_the_shipped_packs_are_listed_with_their_actions() -> None:
    packs = {p["name"]: p for p in packs_view()}
    assert set(packs) == {"finance", "health", "defense", "gdpr"}
    assert packs["finance"]["actions"]["CREDIT_CARD"] and packs["defense"]["route_label"] == "onprem"


async def test_every_change_is_audited_without_the_codewords(store: Store, tmp_path: Path) -> None:
    audit = AuditLog(SQLiteAuditStore(tmp_path / "audit.db"), AuditConfig())
    await store.create_tenant(tenant("bank"))
    await store.create_key(key("key_9", "bank"))
    policies = CompliancePolicies(store, CONFIG, audit, actor="alice", clock=lambda: NOW)
    await policies.put("tenant", "bank", ["finance", "defense"], {"PHONE": "mask"}, ["Blue Harbor", "Opal"])
    await policies.put("key", "key_9", None, {"EMAIL": "redact"})
    await policies.delete("key", "key_9")
    with pytest.raises(AdminError):
        await policies.put("tenant", "bank", ["pci"])  # refused: nothing audited
    assert audit.store is not None
    async with audit.store.snapshot() as view:
        records = [r async for r in view.records()]
    assert [(r.decision, r.tenant_id, r.key_id, r.route, r.extra["policy"]) for r in records] == [
        ("policy_set", "bank", "alice", "admin", "tenant:bank"), ("policy_set", "bank", "alice", "admin", "key:key_9"),
        ("policy_deleted", "bank", "alice", "admin", "key:key_9")]
    first = records[0]
    assert first.packs == {"finance": load_pack("finance").version, "defense": load_pack("defense").version}
    assert first.extra["codewords"] == 2 and first.extra["overrides"] == {"PHONE": "mask"}
    assert first.retention_days == 365 and len(first.prompt_sha256) == 64
    assert records[1].extra["packs"] is None and not records[1].packs
    exported = json.dumps([dataclasses.asdict(r) for r in records])
    assert "Blue Harbor" not in exported and "Opal" not in exported
    async with audit.store.snapshot() as view:
        assert (await averify(view.records(), GENESIS)).ok
    await audit.aclose()


async def test_the_effective_policy_of_a_key_names_each_layer(policies: CompliancePolicies, store: Store) -> None:
    view = await policies.effective("key_1")
    assert [(x["layer"], x["source"]) for x in view["layers"]] == [("defaults", "config")]
    assert view["packs"] == {"gdpr": load_pack("gdpr").version} and view["actions"]["PERSON"] == "pseudonymize"
    await policies.put("tenant", "acme", ["finance", "defense"])
    await policies.put("key", "key_1", None, {"PERSON": "redact", "IBAN": "allow"}, ["Opal"])
    view = await policies.effective("key_1")
    assert [(x["layer"], x["source"], x["packs"]) for x in view["layers"]] == [
        ("defaults", "config", ["gdpr"]), ("tenant", "admin", ["finance", "defense"]), ("key", "admin", None)]
    assert set(view["packs"]) == {"finance", "defense"} and view["route_label"] == "onprem"
    assert view["actions"]["PERSON"] == "redact" and "IBAN" not in view["actions"]  # allowed: not listed
    assert view["actions"]["CREDIT_CARD"] == "mask" and view["codewords"] == 1 and view["scanned"]
    assert view["audit_retention_days_min"] == 365
    # Layers that stopped agreeing (written around the checks): reported, as requests of the key are refused.
    await store.put_compliance_policy(CompliancePolicy("tenant", "acme", ("gdpr",)))
    await store.put_compliance_policy(CompliancePolicy("key", "key_1", None, {"EMAIL": "route"}))
    assert "route_label" in await refused(409, policies.effective("key_1"))
    assert "not found" in await refused(404, policies.effective("key_404"))
