"""Compliance policies of tenants and keys, set at run time through the admin API and the CLI.

The config file's ``compliance.tenants`` and ``compliance.keys`` stay the way to declare policies as code; a
tenant or key the file names cannot also be given one here (409: one source per policy).  Every other tenant
or key can: the policy is stored beside the tenant or key (deleted with it), and every instance applies it at
its next poll of the store (``store.refresh_interval``), the instance that took the write at once.

A policy is checked whole before it is stored: known packs, entity types and actions, usable codewords, and
the policy it makes once layered under the config's defaults and the tenant's policy (a tenant's new packs
are checked with each of its keys' policies too: two packs that route to different labels are refused here,
not on a caller's request).

Every change is evidence: with an audit log, it appends one record to the hash chain (route ``admin``, decision
``policy_set`` or ``policy_deleted``, the actor, the packs and their versions, the overrides, how many codewords,
and the SHA-256 of the whole policy, never the codewords themselves), committed before the change is answered.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any, Literal

from passerelle.admin.report_format import iso
from passerelle.admin.service import AdminError, invalid, store_errors
from passerelle.audit.records import AuditEvent
from passerelle.audit.writer import AuditLog
from passerelle.compliance.detectors.codewords import normalise
from passerelle.compliance.policy import SHIPPED_PACKS, Policy, PolicyError, build_policy, check_layer, load_pack
from passerelle.config.schema import Config, PolicyConfig
from passerelle.pipeline.auth import config_key_id
from passerelle.pipeline.compliance import merge_layers, policy_layers, stored_layers
from passerelle.stores.base import PolicyCheck, Store
from passerelle.stores.records import CompliancePolicy

PolicyScope = Literal["tenant", "key"]
SCOPES: tuple[PolicyScope, ...] = ("tenant", "key")


def _scope(value: str) -> PolicyScope:
    if value not in SCOPES:
        raise invalid(f"scope: expected tenant or key, got {value!r}")
    return "tenant" if value == "tenant" else "key"


class CompliancePolicies:
    """The admin operations on compliance policies, over the store and the config's own policies."""

    def __init__(self, store: Store, config: Config, audit: AuditLog | None = None, actor: str = "admin",
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.config = config.compliance
        # The config file's keys (``keys:``): their tenants' stored policies are layered under them too.
        self.config_keys = {config_key_id(k.name): k for k in config.keys}
        self.audit = audit  # changes are audited when it is enabled
        self.actor = actor.strip()[:200] or "admin"  # who asked: kept in the audit record
        self.clock = clock

    def _in_config(self, scope: PolicyScope, scope_id: str, key_name: str | None = None) -> bool:
        table = self.config.tenants if scope == "tenant" else self.config.keys
        return scope_id in table or (key_name is not None and key_name in table)

    async def put(self, scope: str, scope_id: str, packs: Sequence[str] | None = None,
                  overrides: dict[str, str] | None = None, codewords: Sequence[str] = ()) -> CompliancePolicy:
        """Set (create or replace) the policy of a tenant or key; ``packs`` None inherits the layer below."""
        where = _scope(scope)
        overrides = dict(overrides or {})
        try:
            words = tuple(normalise(codewords))
            check_layer(packs or (), overrides)
        except (PolicyError, ValueError) as exc:
            raise invalid(str(exc)) from None
        policy = CompliancePolicy(where, scope_id, None if packs is None else tuple(dict.fromkeys(packs)), overrides,
                                  words, self.clock())
        with store_errors(f"{where} {scope_id!r} not found"):
            if where == "tenant":
                await self.store.get_tenant(scope_id)
            tenant, keys = await self._affected(where, scope_id)
            if self._in_config(where, scope_id, None if where == "tenant" else keys[0][1]):
                raise _set_in_file(where, scope_id)
            await self.store.put_compliance_policy(policy, self._layering(tenant, keys, where == "tenant"))
        await self._audit("policy_set", policy, tenant)
        return policy

    async def _affected(self, scope: PolicyScope, scope_id: str) -> tuple[str, list[tuple[str, str]]]:
        """The tenant of a policy's scope, and (id, name) of the keys a change of it may affect: a key itself, or
        every key of a tenant (the store's, then the config file's).  NotFound for an unknown key."""
        if scope == "key":
            key = await self.store.get_key(scope_id)
            return key.tenant_id, [(key.id, key.name)]
        stored = [(k.id, k.name) for k in await self.store.list_keys(tenant_id=scope_id)]
        return scope_id, stored + [(key_id, k.name) for key_id, k in self.config_keys.items() if k.tenant == scope_id]

    def _layering(self, tenant: str, keys: Sequence[tuple[str, str]], with_tenant: bool) -> PolicyCheck:
        """The check the store runs inside the write, on the policies as the change leaves them (so two changes
        that are each fine but not together cannot both land): the tenant's own layers, then every one of ``keys``
        that has a layer of its own.  409 when they do not make a policy."""

        def check(after: list[CompliancePolicy]) -> None:
            stored = stored_layers(after)
            if with_tenant:
                self._compiles(stored, tenant)
            for key_id, key_name in keys:
                if ("key", key_id) in stored or self._in_config("key", key_id, key_name):
                    self._compiles(stored, tenant, key_id, key_name)

        return check

    async def _stored(self) -> dict[tuple[str, str], PolicyConfig]:
        return stored_layers(await self.store.list_compliance_policies())

    def _compiles(self, stored: dict[tuple[str, str], PolicyConfig], tenant: str, key_id: str = "",
                  key_name: str | None = None) -> Policy | None:
        """The policy the layers make, as the gateway builds it; 409 when they do not make one."""
        merged = merge_layers([layer for _, _, layer in policy_layers(self.config, stored, tenant, key_id, key_name)])
        if merged is None:
            return None
        try:
            return build_policy([load_pack(name) for name in merged[0]], merged[1])
        except PolicyError as exc:
            whose = f"key {key_id!r}" if key_id else f"tenant {tenant!r}"
            raise AdminError(409, "conflict_error", f"the policy of {whose} would be invalid: {exc}") from None

    async def list(self, scope: str | None = None, scope_id: str | None = None) -> list[dict[str, Any]]:
        """The store's policies and the config file's, each with its source."""
        where = _scope(scope) if scope else None
        views = [policy_view(p) for p in await self.store.list_compliance_policies(where, scope_id)]
        for kind, table in (("tenant", self.config.tenants), ("key", self.config.keys)):
            if where in (None, kind):
                views += [config_view(kind, name, layer) for name, layer in sorted(table.items())
                          if scope_id in (None, name)]
        return sorted(views, key=lambda v: (v["scope"], v["scope_id"], v["source"]))

    async def effective(self, key_id: str) -> dict[str, Any]:
        """What applies to a key (of the store, or of the config file by its ``cfg_<name>`` id): each layer with its
        source, then the merged policy (the actions it takes per entity type, the route label, the packs and their
        versions, the audit retention floor)."""
        with store_errors(f"key {key_id!r} not found"):
            filed = self.config_keys.get(key_id)
            if filed is not None:
                tenant, name = filed.tenant, filed.name
            else:
                key = await self.store.get_key(key_id)
                tenant, name = key.tenant_id, key.name
            stored = await self._stored()
        layers = policy_layers(self.config, stored, tenant, key_id, name)
        policy = self._compiles(stored, tenant, key_id, name)  # 409: requests of the key are refused
        return {
            "key_id": key_id, "tenant": tenant,
            "layers": [{"layer": name, "source": source, "packs": layer.packs, "overrides": dict(layer.overrides),
                        "codewords": len(layer.codewords)} for name, source, layer in layers],
            "scanned": bool(policy and policy.types), "packs": dict(policy.versions) if policy else {},
            "actions": {t: a for t, a in sorted(policy.actions.items()) if a != "allow"} if policy else {},
            "route_label": policy.route_label if policy else None,
            "audit_retention_days_min": policy.audit_retention_days_min if policy else 0,
            "codewords": len({w for _, _, layer in layers for w in layer.codewords})}

    async def get(self, scope: str, scope_id: str) -> dict[str, Any]:
        found = await self.list(scope, scope_id)
        if not found:
            raise AdminError(404, "not_found_error", f"no compliance policy on {scope} {scope_id!r}")
        return found[0]

    async def delete(self, scope: str, scope_id: str) -> None:
        where = _scope(scope)
        if self._in_config(where, scope_id):
            raise _set_in_file(where, scope_id)
        with store_errors(f"no compliance policy on {where} {scope_id!r}"):
            # A tenant's keys may rely on its packs (a key's 'route' uses the label of the tenant's pack).
            tenant, keys = await self._affected(where, scope_id)
            await self.store.delete_compliance_policy(where, scope_id, self._layering(tenant, keys, True))
        await self._audit("policy_deleted", CompliancePolicy(where, scope_id, updated_at=self.clock()), tenant)

    async def _audit(self, decision: str, policy: CompliancePolicy, tenant: str) -> None:
        if self.audit is None or not self.audit.enabled:
            return
        packs = [load_pack(name) for name in policy.packs or ()]
        whole = json.dumps(policy_view(policy), sort_keys=True, ensure_ascii=False).encode()
        self.audit.append(AuditEvent(
            request_id="adm_" + uuid.uuid4().hex, time=policy.updated_at, tenant_id=tenant, team_id=None,
            key_id=self.actor, route="admin", purpose=None, model="-", deployment=None, upstream_model=None,
            packs={p.name: p.version for p in packs}, findings=[], decision=decision, status=200, input_tokens=0,
            output_tokens=0, prompt_sha256=hashlib.sha256(whole).hexdigest(), answer_sha256=None,
            retention_days=max((p.audit_retention_days_min for p in packs), default=0),
            extra={"policy": policy.id, "packs": None if policy.packs is None else list(policy.packs),
                   "overrides": dict(sorted(policy.overrides.items())), "codewords": len(policy.codewords)}))
        await self.audit.flush()  # a policy change is evidence: committed before it is answered


def _set_in_file(scope: str, scope_id: str) -> AdminError:
    return AdminError(409, "conflict_error", f"the config file sets the compliance policy of {scope} {scope_id!r}: "
                      "change it there")


def policy_view(p: CompliancePolicy) -> dict[str, Any]:
    return {"scope": p.scope, "scope_id": p.scope_id, "source": "admin",
            "packs": None if p.packs is None else list(p.packs), "overrides": dict(sorted(p.overrides.items())),
            "codewords": list(p.codewords), "updated_at": iso(p.updated_at)}


def config_view(scope: str, scope_id: str, layer: PolicyConfig) -> dict[str, Any]:
    return {"scope": scope, "scope_id": scope_id, "source": "config", "packs": layer.packs,
            "overrides": dict(sorted(layer.overrides.items())), "codewords": list(layer.codewords),
            "updated_at": None}


def packs_view() -> list[dict[str, Any]]:
    """The shipped packs: what a policy can select."""
    out = []
    for name in SHIPPED_PACKS:
        pack = load_pack(name)
        out.append({"name": pack.name, "version": pack.version, "description": pack.description,
                    "actions": dict(sorted(pack.actions.items())), "route_label": pack.route_label,
                    "audit_retention_days_min": pack.audit_retention_days_min})
    return out
