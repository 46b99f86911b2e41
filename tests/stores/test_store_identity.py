"""Identities, policies, settings, version and snapshot: the same tests on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from decimal import Decimal

import pytest

from passerelle.stores import Conflict, NotFound
from passerelle.stores.records import Budget
from passerelle.stores.sql_store import SQLStore
from tests.stores.conftest import budget, key, rate_limit, team, tenant, usage


async def test_tenant_crud(store: SQLStore) -> None:
    created = tenant("beta", metadata={"plan": "pro", "région": "eu"})
    assert await store.create_tenant(created) == created
    await store.create_tenant(tenant("alpha"))
    assert await store.get_tenant("beta") == created
    assert [t.id for t in await store.list_tenants()] == ["alpha", "beta"]
    with pytest.raises(Conflict):
        await store.create_tenant(tenant("beta", name="other"))
    with pytest.raises(NotFound):
        await store.get_tenant("gamma")
    await store.delete_tenant("beta")
    with pytest.raises(NotFound):
        await store.get_tenant("beta")
    with pytest.raises(NotFound):
        await store.delete_tenant("beta")
    assert await store.list_tenants() == [tenant("alpha")]


@pytest.mark.parametrize("bad", ["", "Acme", "-acme", "_acme", "ac me", "acme/x", "a" * 64, "acmé"])
async def test_tenant_id_must_be_a_slug(store: SQLStore, bad: str) -> None:
    with pytest.raises(ValueError, match="tenant id"):
        await store.create_tenant(tenant(bad))
    assert await store.list_tenants() == []


async def test_longest_tenant_id_is_accepted(store: SQLStore) -> None:
    await store.create_tenant(tenant("a" * 63))
    assert (await store.get_tenant("a" * 63)).id == "a" * 63


async def test_team_crud_and_errors(store: SQLStore) -> None:
    await store.create_tenant(tenant("acme"))
    await store.create_tenant(tenant("other"))
    with pytest.raises(NotFound):
        await store.create_team(team("ghost/dev"))
    created = team("acme/dev", metadata={"cost_center": "42"})
    assert await store.create_team(created) == created
    await store.create_team(team("acme/ops"))
    await store.create_team(team("other/dev"))
    with pytest.raises(Conflict):
        await store.create_team(team("acme/dev"))
    for bad in ("acme", "acme/", "/dev", "acme/Dev", "acme/dev/x"):
        with pytest.raises(ValueError, match="team id"):
            await store.create_team(team(bad))
    with pytest.raises(ValueError, match="does not belong"):
        await store.create_team(dataclasses.replace(team("acme/qa"), tenant_id="other"))
    assert [t.id for t in await store.list_teams()] == ["acme/dev", "acme/ops", "other/dev"]
    assert await store.list_teams("acme") == [created, team("acme/ops")]
    assert await store.list_teams("nobody") == []


async def test_key_round_trip(store: SQLStore) -> None:
    await store.create_tenant(tenant("acme"))
    await store.create_team(team("acme/dev"))
    created = key("key_0a1b", "acme", "acme/dev", models=("claude-*", "gpt-test"), routes=("openai.chat",),
                  expires_at=1_800_000_000.5, metadata={"owner": "ana"})
    assert await store.create_key(created) == created
    plain = key("key_0a1c", "acme")
    await store.create_key(plain)
    assert await store.get_key("key_0a1b") == created
    assert await store.get_key("key_0a1c") == plain
    assert await store.list_keys() == [created, plain]


async def test_key_errors(store: SQLStore) -> None:
    await store.create_tenant(tenant("acme"))
    await store.create_tenant(tenant("other"))
    await store.create_team(team("other/dev"))
    with pytest.raises(NotFound, match="tenant"):
        await store.create_key(key("key_1", "ghost"))
    with pytest.raises(NotFound, match="team"):
        await store.create_key(key("key_1", "acme", "acme/dev"))
    with pytest.raises(ValueError, match="does not belong"):
        await store.create_key(key("key_1", "acme", "other/dev"))
    with pytest.raises(ValueError, match="key_sha256"):
        await store.create_key(dataclasses.replace(key("key_1", "acme"), key_sha256="ABC"))
    with pytest.raises(ValueError, match="key id"):
        await store.create_key(dataclasses.replace(key("key_1", "acme"), id="key 1"))
    await store.create_key(key("key_1", "acme"))
    with pytest.raises(Conflict):
        await store.create_key(dataclasses.replace(key("key_1", "other"), key_sha256="0" * 64))
    with pytest.raises(Conflict, match="secret"):
        await store.create_key(dataclasses.replace(key("key_1", "acme"), id="key_2"))
    with pytest.raises(NotFound):
        await store.get_key("key_2")
    assert [k.id for k in await store.list_keys()] == ["key_1"]


async def test_revoke_is_idempotent_and_keeps_the_first_time(store: SQLStore) -> None:
    await store.create_tenant(tenant("acme"))
    await store.create_key(key("key_1", "acme"))
    with pytest.raises(NotFound):
        await store.revoke_key("key_404", 5.0)
    first = await store.revoke_key("key_1", 1_700_000_100.5)
    assert first.revoked_at == 1_700_000_100.5
    version = await store.version()
    again = await store.revoke_key("key_1", 1_700_000_200.0)
    assert again == first == await store.get_key("key_1")
    assert await store.version() == version  # nothing changed, nothing to reload


async def test_list_keys_never_crosses_tenants_or_teams(store: SQLStore) -> None:
    for t in ("a", "b"):
        await store.create_tenant(tenant(t))
        await store.create_team(team(f"{t}/dev"))
        await store.create_key(key(f"key_{t}1", t))
        await store.create_key(key(f"key_{t}2", t, f"{t}/dev"))
    assert [k.id for k in await store.list_keys(tenant_id="a")] == ["key_a1", "key_a2"]
    assert [k.id for k in await store.list_keys(tenant_id="b")] == ["key_b1", "key_b2"]
    assert [k.id for k in await store.list_keys(team_id="b/dev")] == ["key_b2"]
    assert await store.list_keys(tenant_id="a", team_id="b/dev") == []
    assert [k.id for k in await store.list_keys(tenant_id="b", team_id="b/dev")] == ["key_b2"]
    assert await store.list_keys(tenant_id="c") == []


async def test_delete_tenant_refuses_while_it_has_teams_or_live_keys(store: SQLStore) -> None:
    await store.create_tenant(tenant("acme"))
    await store.create_team(team("acme/dev"))
    await store.create_key(key("key_1", "acme"))
    with pytest.raises(Conflict, match="teams"):
        await store.delete_tenant("acme")
    await store.delete_team("acme/dev")
    with pytest.raises(Conflict, match="unrevoked keys"):
        await store.delete_tenant("acme")
    await store.revoke_key("key_1", 10.0)
    await store.delete_tenant("acme")
    assert await store.list_tenants() == []
    assert await store.list_keys() == []  # its revoked keys went with it


async def test_delete_team_refuses_while_it_has_live_keys(store: SQLStore) -> None:
    await store.create_tenant(tenant("acme"))
    await store.create_team(team("acme/dev"))
    await store.create_key(key("key_1", "acme", "acme/dev"))
    await store.create_key(key("key_2", "acme"))
    with pytest.raises(NotFound):
        await store.delete_team("acme/ops")
    with pytest.raises(Conflict, match="unrevoked keys"):
        await store.delete_team("acme/dev")
    await store.revoke_key("key_1", 10.0)
    await store.delete_team("acme/dev")
    assert await store.list_teams() == []
    assert [k.id for k in await store.list_keys()] == ["key_2"]  # keys outside the team are untouched


async def test_deleting_a_scope_deletes_its_policies(store: SQLStore) -> None:
    for t in ("acme", "other"):
        await store.create_tenant(tenant(t))
        await store.create_team(team(f"{t}/dev"))
        await store.create_key(key(f"key_{t}", t, f"{t}/dev"))
        await store.put_budget(budget(f"bud_{t}_tenant", "tenant", t))
        await store.put_budget(budget(f"bud_{t}_team", "team", f"{t}/dev"))
        await store.put_budget(budget(f"bud_{t}_key", "key", f"key_{t}"))
        await store.put_rate_limit(rate_limit(f"rl_{t}_tenant", "tenant", t))
        await store.put_rate_limit(rate_limit(f"rl_{t}_team", "team", f"{t}/dev"))
        await store.put_rate_limit(rate_limit(f"rl_{t}_key", "key", f"key_{t}"))
    await store.revoke_key("key_acme", 10.0)
    await store.delete_team("acme/dev")  # takes the team's and its revoked key's policies
    assert [b.id for b in await store.list_budgets()] == ["bud_acme_tenant", "bud_other_key", "bud_other_team",
                                                          "bud_other_tenant"]
    assert [x.id for x in await store.list_rate_limits()] == ["rl_acme_tenant", "rl_other_key", "rl_other_team",
                                                              "rl_other_tenant"]
    await store.delete_tenant("acme")
    assert {b.scope_id for b in await store.list_budgets()} == {"other", "other/dev", "key_other"}
    assert {x.scope_id for x in await store.list_rate_limits()} == {"other", "other/dev", "key_other"}
    # A tenant deleted with a revoked key that was in no team: that key's policies go too.
    await store.create_tenant(tenant("solo"))
    await store.create_key(key("key_solo", "solo"))
    await store.put_budget(budget("bud_solo", "key", "key_solo"))
    await store.revoke_key("key_solo", 10.0)
    await store.delete_tenant("solo")
    assert await store.list_budgets(scope="key", scope_id="key_solo") == []


async def test_budgets(store: SQLStore) -> None:
    await store.create_tenant(tenant("acme"))
    await store.create_key(key("key_1", "acme"))
    exact = budget("bud_1", "tenant", "acme", "12.345678901234", mode="soft", webhook="https://hooks.example/b")
    assert await store.put_budget(exact) == exact
    await store.put_budget(budget("bud_2", "key", "key_1", "0.50"))
    stored = await store.list_budgets(scope="tenant", scope_id="acme")
    assert stored == [exact]
    assert stored[0].limit_usd == Decimal("12.345678901234")
    assert str((await store.list_budgets(scope="key"))[0].limit_usd) == "0.50"  # even the scale survives
    replaced = dataclasses.replace(exact, limit_usd=Decimal("99999999.999999999999"), period="day", mode="hard",
                                   webhook=None)
    await store.put_budget(replaced)
    assert await store.list_budgets() == [replaced, budget("bud_2", "key", "key_1", "0.50")]
    assert await store.list_budgets(scope="team") == []
    with pytest.raises(NotFound, match="team"):
        await store.put_budget(budget("bud_3", "team", "acme/ghost"))
    with pytest.raises(NotFound, match="key"):
        await store.put_budget(budget("bud_3", "key", "key_ghost"))
    await store.delete_budget("bud_1")
    with pytest.raises(NotFound):
        await store.delete_budget("bud_1")
    assert [b.id for b in await store.list_budgets()] == ["bud_2"]


@pytest.mark.parametrize("change", [
    {"limit_usd": Decimal("-1")}, {"limit_usd": Decimal("NaN")}, {"limit_usd": Decimal("Infinity")},
    {"limit_usd": Decimal("0.0000000000001")}, {"limit_usd": 5}, {"period": "week"}, {"mode": "strict"},
    {"scope": "org"}, {"scope_id": ""}, {"id": ""},
])
async def test_invalid_budgets_are_refused(store: SQLStore, change: dict[str, object]) -> None:
    await store.create_tenant(tenant("acme"))
    bad: Budget = dataclasses.replace(budget("bud_1", "tenant", "acme"), **change)  # type: ignore[arg-type]
    version = await store.version()
    with pytest.raises(ValueError):
        await store.put_budget(bad)
    assert await store.list_budgets() == []
    assert await store.version() == version


async def test_rate_limits(store: SQLStore) -> None:
    await store.create_tenant(tenant("acme"))
    await store.create_team(team("acme/dev"))
    first = rate_limit("rl_1", "team", "acme/dev", model="gpt-test", rpm=60, tpm=100_000, concurrent=4)
    assert await store.put_rate_limit(first) == first
    second = rate_limit("rl_2", "tenant", "acme", rpm=None, tpm=5_000_000_000)
    await store.put_rate_limit(second)
    assert await store.list_rate_limits() == [first, second]
    assert await store.list_rate_limits(scope="team", scope_id="acme/dev") == [first]
    assert await store.list_rate_limits(scope="key") == []
    replaced = dataclasses.replace(first, model=None, concurrent=None)
    await store.put_rate_limit(replaced)
    assert await store.list_rate_limits(scope="team") == [replaced]
    with pytest.raises(ValueError, match="rpm"):
        await store.put_rate_limit(rate_limit("rl_3", "tenant", "acme", rpm=0))
    with pytest.raises(ValueError, match="scope"):
        await store.put_rate_limit(rate_limit("rl_3", "org", "acme"))  # type: ignore[arg-type]
    with pytest.raises(NotFound):
        await store.put_rate_limit(rate_limit("rl_3", "tenant", "ghost"))
    await store.delete_rate_limit("rl_1")
    with pytest.raises(NotFound):
        await store.delete_rate_limit("rl_1")
    assert await store.list_rate_limits() == [second]


async def test_settings(store: SQLStore) -> None:
    assert await store.get_setting("admin_key_sha256") is None
    await store.set_setting("admin_key_sha256", "abc")
    await store.set_setting("admin_key_sha256", "def")
    assert await store.get_setting("admin_key_sha256") == "def"


async def test_every_identity_and_policy_write_bumps_the_version(store: SQLStore) -> None:
    writes: list[Callable[[], Awaitable[object]]] = [
        lambda: store.create_tenant(tenant("acme")),
        lambda: store.create_team(team("acme/dev")),
        lambda: store.create_key(key("key_1", "acme", "acme/dev")),
        lambda: store.put_budget(budget("bud_1", "key", "key_1")),
        lambda: store.put_budget(budget("bud_1", "key", "key_1", "20")),  # replacing is a write too
        lambda: store.put_rate_limit(rate_limit("rl_1", "team", "acme/dev")),
        lambda: store.put_rate_limit(rate_limit("rl_1", "team", "acme/dev", rpm=5)),
        lambda: store.delete_budget("bud_1"),
        lambda: store.delete_rate_limit("rl_1"),
        lambda: store.revoke_key("key_1", 10.0),
        lambda: store.delete_team("acme/dev"),
        lambda: store.delete_tenant("acme"),
    ]
    version = await store.version()
    for write in writes:
        await write()
        now = await store.version()
        assert now == version + 1
        version = now


async def test_ledger_settings_and_refused_writes_leave_the_version(store: SQLStore) -> None:
    await store.create_tenant(tenant("acme"))
    await store.create_key(key("key_1", "acme"))
    version = await store.version()
    await store.append_usage([usage("r1", 1.0), usage("r2", 2.0)])
    await store.set_setting("x", "y")
    with pytest.raises(Conflict):
        await store.create_tenant(tenant("acme"))
    with pytest.raises(Conflict):
        await store.delete_tenant("acme")
    with pytest.raises(NotFound):
        await store.delete_budget("bud_404")
    with pytest.raises(NotFound):
        await store.put_rate_limit(rate_limit("rl_1", "key", "key_404"))
    assert await store.version() == version
    assert await store.snapshot() == await store.snapshot()


async def test_snapshot_holds_everything(store: SQLStore) -> None:
    empty = await store.snapshot()
    assert empty.version == await store.version()
    assert (empty.tenants, empty.teams, empty.keys, empty.budgets, empty.rate_limits) == ((), (), (), (), ())
    await store.create_tenant(tenant("acme"))
    await store.create_team(team("acme/dev"))
    await store.create_key(key("key_1", "acme", "acme/dev"))
    await store.create_key(key("key_2", "acme"))
    await store.revoke_key("key_2", 50.0)
    await store.put_budget(budget("bud_1", "team", "acme/dev", "7.5"))
    await store.put_rate_limit(rate_limit("rl_1", "key", "key_1", tpm=1000))
    snap = await store.snapshot()
    assert snap.version == await store.version() == empty.version + 7
    assert snap.tenants == tuple(await store.list_tenants())
    assert snap.teams == tuple(await store.list_teams())
    assert snap.keys == tuple(await store.list_keys())  # revoked keys included: the caller filters
    assert [k.revoked_at for k in snap.keys] == [None, 50.0]
    assert snap.budgets == tuple(await store.list_budgets())
    assert snap.rate_limits == tuple(await store.list_rate_limits())


async def test_snapshot_is_consistent_with_its_version_under_concurrent_writes(store: SQLStore) -> None:
    await store.create_tenant(tenant("acme"))
    base = await store.snapshot()
    snapshots = []

    async def writer() -> None:
        for i in range(40):
            await store.create_key(key(f"key_{i:03d}", "acme"))  # one key and one version per write

    async def reader() -> None:
        for _ in range(40):
            snapshots.append(await store.snapshot())

    await asyncio.gather(writer(), reader(), reader())
    for snap in snapshots:
        assert len(snap.keys) == snap.version - base.version
        assert [k.id for k in snap.keys] == [f"key_{i:03d}" for i in range(len(snap.keys))]
    assert len((await store.snapshot()).keys) == 40
