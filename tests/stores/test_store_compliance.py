"""Compliance policies in the store, on SQLite and on the machine's PostgreSQL: one per tenant or key, in the
snapshot every instance loads, gone with their tenant or key."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from passerelle.stores.base import NotFound
from passerelle.stores.records import CompliancePolicy
from passerelle.stores.sql_store import SQLStore
from tests.stores.conftest import key, team, tenant


async def org(store: SQLStore) -> None:
    await store.create_tenant(tenant("acme"))
    await store.create_team(team("acme/ml"))
    await store.create_key(key("key_1", "acme", "acme/ml"))


async def test_put_replaces_by_scope_and_every_field_round_trips(store: SQLStore) -> None:
    await org(store)
    first = CompliancePolicy("tenant", "acme", ("finance",), {"PHONE": "mask"}, ("Blue Harbor",), 1_700_000_000.5)
    await store.put_compliance_policy(first)
    inherit = CompliancePolicy("key", "key_1", None, {}, (), 1_700_000_001.0)
    await store.put_compliance_policy(inherit)
    assert await store.list_compliance_policies() == [inherit, first]  # ordered by id: "key:..." < "tenant:..."
    replaced = CompliancePolicy("tenant", "acme", (), {"EMAIL": "redact", "IBAN": "block"}, (), 1_700_000_002.0)
    version = await store.version()
    await store.put_compliance_policy(replaced)
    assert await store.version() == version + 1
    assert await store.list_compliance_policies("tenant") == [replaced]
    assert await store.list_compliance_policies("key", "key_1") == [inherit]
    snapshot = await store.snapshot()
    assert snapshot.compliance == (inherit, replaced) and snapshot.version == version + 1


async def test_only_existing_tenants_and_keys_take_a_policy(store: SQLStore) -> None:
    await org(store)
    for scope, scope_id in (("tenant", "nobody"), ("key", "key_404")):
        with pytest.raises(NotFound):
            await store.put_compliance_policy(CompliancePolicy(scope, scope_id, ("gdpr",)))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="tenant or a key"):
        await store.put_compliance_policy(CompliancePolicy("team", "acme/ml", ("gdpr",)))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="non-empty strings"):
        await store.put_compliance_policy(CompliancePolicy("tenant", "acme", ("",)))
    assert await store.list_compliance_policies() == []


async def test_delete_and_cascade_with_the_tenant(store: SQLStore) -> None:
    await org(store)
    await store.put_compliance_policy(CompliancePolicy("tenant", "acme", ("gdpr",)))
    await store.put_compliance_policy(CompliancePolicy("key", "key_1", ("finance",)))
    await store.delete_compliance_policy("key", "key_1")
    with pytest.raises(NotFound):
        await store.delete_compliance_policy("key", "key_1")
    await store.put_compliance_policy(CompliancePolicy("key", "key_1", ("finance",)))
    await store.revoke_key("key_1", 1_700_000_100.0)
    await store.delete_team("acme/ml")  # the revoked key goes with its team, and its policy with it
    assert [p.id for p in await store.list_compliance_policies()] == ["tenant:acme"]
    await store.delete_tenant("acme")
    assert await store.list_compliance_policies() == []


async def test_a_check_sees_the_policies_as_the_change_leaves_them_and_can_cancel_it(store: SQLStore) -> None:
    await org(store)
    seen: list[list[str]] = []

    def record(after: list[CompliancePolicy]) -> None:
        seen.append(sorted(p.id for p in after))

    def refuse(after: list[CompliancePolicy]) -> None:
        raise LookupError("refused by the check")

    await store.put_compliance_policy(CompliancePolicy("tenant", "acme", ("gdpr",)), record)
    await store.put_compliance_policy(CompliancePolicy("key", "key_1", ("finance",)), record)
    await store.put_compliance_policy(CompliancePolicy("key", "key_1", ("health",)), record)  # replaced, not added
    await store.delete_compliance_policy("tenant", "acme", record)
    assert seen == [["tenant:acme"], ["key:key_1", "tenant:acme"], ["key:key_1", "tenant:acme"], ["key:key_1"]]
    version = await store.version()
    with pytest.raises(LookupError):
        await store.put_compliance_policy(CompliancePolicy("tenant", "acme", ("defense",)), refuse)
    with pytest.raises(LookupError):
        await store.delete_compliance_policy("key", "key_1", refuse)
    assert [(p.id, p.packs) for p in await store.list_compliance_policies()] == [("key:key_1", ("health",))]
    assert await store.version() == version  # a refused change changes nothing


async def test_concurrent_checked_writes_see_each_other(store: SQLStore) -> None:
    """Each check runs inside its write: of two concurrent writes, the second to commit sees the first."""
    await org(store)
    seen: dict[str, list[str]] = {}

    def record(name: str) -> Callable[[list[CompliancePolicy]], None]:
        return lambda after: seen.__setitem__(name, sorted(p.id for p in after))

    await asyncio.gather(store.put_compliance_policy(CompliancePolicy("tenant", "acme", ("gdpr",)), record("t")),
                         store.put_compliance_policy(CompliancePolicy("key", "key_1", ("finance",)), record("k")))
    both = ["key:key_1", "tenant:acme"]
    assert both in (seen["t"], seen["k"]), seen
