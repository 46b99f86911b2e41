"""Compliance policies in the admin API (admin key only); JSON:

    GET    /admin/compliance/packs                          the shipped packs and their actions
    GET    /admin/compliance/policies?scope=&scope_id=      the store's policies and the config file's
    GET    /admin/compliance/policies/{scope}/{id}          one (scope: tenant or key)
    PUT    /admin/compliance/policies/{scope}/{id}          {packs?, overrides?, codewords?}: set it
    DELETE /admin/compliance/policies/{scope}/{id}
    GET    /admin/compliance/effective/{key_id}             what applies to a key: its layers and the merged policy

Refusals: 400 (an unknown pack, type or action, a bad codeword list), 404 (no such tenant, key or policy),
409 (the config file sets that policy, or the layered policy would be invalid).  A write applies on this
instance at once, on the others within ``store.refresh_interval``, and is audited (``x-passerelle-actor``
names who made it; default ``admin``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from passerelle.admin.compliance import CompliancePolicies, packs_view, policy_view
from passerelle.admin.validation import NewCompliancePolicy

if TYPE_CHECKING:
    from passerelle.server.admin import Call

Reply = tuple[int, Any]
Op = Callable[["Call"], Awaitable[Reply]]


def _policies(c: Call) -> CompliancePolicies:
    # Changes are audited under the caller's name for them (x-passerelle-actor), as the AI Act switches are.
    return CompliancePolicies(c.gw.store, c.gw.config, c.gw.audit, c.headers.get("x-passerelle-actor", "admin"))


async def list_packs(c: Call) -> Reply:
    c.params()
    return 200, {"data": packs_view()}


async def list_policies(c: Call) -> Reply:
    q = c.params("scope", "scope_id")
    return 200, {"data": await _policies(c).list(q.get("scope"), q.get("scope_id"))}


async def get_policy(c: Call) -> Reply:
    c.params()
    return 200, await _policies(c).get(c.args[0], c.args[1])


async def effective(c: Call) -> Reply:
    c.params()
    return 200, await _policies(c).effective(c.args[0])


async def put_policy(c: Call) -> Reply:
    c.params()
    new = await c.body(NewCompliancePolicy)
    policy = await _policies(c).put(c.args[0], c.args[1], new.packs, new.overrides, new.codewords)
    await c.changed()
    return 200, policy_view(policy)


async def delete_policy(c: Call) -> Reply:
    c.params()
    await _policies(c).delete(c.args[0], c.args[1])
    await c.changed()
    return 200, {"scope": c.args[0], "scope_id": c.args[1], "deleted": True}


ROUTES: list[tuple[tuple[str, ...], dict[str, Op]]] = [
    (("compliance", "packs"), {"GET": list_packs}),
    (("compliance", "policies"), {"GET": list_policies}),
    (("compliance", "policies", "*", "*"), {"GET": get_policy, "PUT": put_policy, "DELETE": delete_policy}),
    (("compliance", "effective", "*"), {"GET": effective}),
]
