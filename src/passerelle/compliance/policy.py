"""Policy packs (data files in ``packs/``) and the policy a request runs under.

A tenant or key selects packs and may override the action of any entity type.  Where packs
disagree, the stricter action wins (block > route > redact > hash > mask > pseudonymize > allow);
an explicit override always wins.  Types no selected pack names are not looked for at all, so a
narrow policy also scans faster.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from types import MappingProxyType
from typing import Literal

import yaml

from passerelle.compliance.findings import ENTITY_TYPES

Action = Literal["allow", "pseudonymize", "mask", "hash", "redact", "route", "block"]
ACTIONS: tuple[Action, ...] = ("allow", "pseudonymize", "mask", "hash", "redact", "route", "block")
_STRICTNESS = {action: rank for rank, action in enumerate(ACTIONS)}
SHIPPED_PACKS = ("finance", "health", "defense", "gdpr")


class PolicyError(ValueError):
    """A pack file or an override is invalid; the message names it."""


@dataclass(frozen=True, slots=True)
class Pack:
    name: str
    version: str
    description: str
    actions: Mapping[str, Action]
    audit_retention_days_min: int = 0
    route_label: str | None = None


@dataclass(frozen=True, slots=True)
class Policy:
    """The compiled decision table of one tenant or key."""

    actions: Mapping[str, Action]  # entity type -> action; absent types are not scanned
    packs: tuple[str, ...] = ()
    versions: Mapping[str, str] = field(default_factory=dict)  # pack -> version, for the audit record
    route_label: str | None = None
    audit_retention_days_min: int = 0

    @property
    def types(self) -> frozenset[str]:
        return frozenset(t for t, action in self.actions.items() if action != "allow")

    def action(self, entity: str) -> Action:
        return self.actions.get(entity, "allow")


def _check_action(where: str, value: object) -> Action:
    if value not in _STRICTNESS:
        raise PolicyError(f"{where}: unknown action {value!r}; expected one of {', '.join(ACTIONS)}")
    return value


def _check_type(where: str, entity: str) -> str:
    if entity not in ENTITY_TYPES:
        raise PolicyError(f"{where}: unknown entity type {entity!r}")
    return entity


def parse_pack(document: object, where: str) -> Pack:
    if not isinstance(document, dict):
        raise PolicyError(f"{where}: expected a mapping")
    unknown = set(document) - {"name", "version", "description", "actions", "audit_retention_days_min",
                               "route_label"}
    if unknown:
        raise PolicyError(f"{where}: unknown field {sorted(unknown)[0]!r}")
    actions = document.get("actions")
    if not isinstance(actions, dict) or not actions:
        raise PolicyError(f"{where}.actions: expected a mapping of entity type to action")
    checked = {_check_type(f"{where}.actions", str(t)): _check_action(f"{where}.actions.{t}", a)
               for t, a in actions.items()}
    if "route" in checked.values() and not document.get("route_label"):
        raise PolicyError(f"{where}: a 'route' action needs route_label (the deployment label it requires)")
    retention = document.get("audit_retention_days_min", 0)
    if not isinstance(retention, int) or retention < 0:
        raise PolicyError(f"{where}.audit_retention_days_min: expected a non-negative integer")
    return Pack(name=str(document.get("name") or where), version=str(document.get("version", "")),
                description=str(document.get("description", "")), actions=MappingProxyType(checked),
                audit_retention_days_min=retention, route_label=document.get("route_label"))


@cache
def load_pack(name: str) -> Pack:
    """A shipped pack by name, read once per process: reading and parsing its YAML takes ~1.6 ms, and a caller's
    policy is compiled on its first request (and again after a policy change)."""
    if name not in SHIPPED_PACKS:
        raise PolicyError(f"unknown pack {name!r}; shipped packs: {', '.join(SHIPPED_PACKS)}")
    text = resources.files("passerelle.compliance.packs").joinpath(f"{name}.yaml").read_text("utf-8")
    return parse_pack(yaml.safe_load(text), f"pack {name}")


def check_layer(packs: Sequence[str], overrides: Mapping[str, str]) -> None:
    """The names one layer of a policy uses: shipped packs, entity types, actions (``PolicyError`` else).  How the
    layers combine is ``build_policy``'s to check."""
    for name in packs:
        load_pack(name)
    for entity, action in overrides.items():
        _check_type("overrides", entity)
        _check_action(f"overrides.{entity}", action)


def build_policy(packs: Sequence[Pack], overrides: Mapping[str, str] | None = None) -> Policy:
    actions: dict[str, Action] = {}
    for pack in packs:
        for entity, action in pack.actions.items():
            current = actions.get(entity)
            if current is None or _STRICTNESS[action] > _STRICTNESS[current]:
                actions[entity] = action
    for entity, name in (overrides or {}).items():
        actions[_check_type("overrides", entity)] = _check_action(f"overrides.{entity}", name)
    labels = {p.route_label for p in packs if p.route_label}
    if len(labels) > 1:
        raise PolicyError(f"packs require different route labels: {', '.join(sorted(labels))}")
    if not labels and "route" in actions.values():  # it would restrict the request to nothing: never silently
        routed = sorted(t for t, a in actions.items() if a == "route")
        raise PolicyError(f"'route' ({', '.join(routed)}) needs a pack with a route_label among the selected packs")
    return Policy(actions=actions, packs=tuple(p.name for p in packs),
                  versions={p.name: p.version for p in packs}, route_label=next(iter(labels), None),
                  audit_retention_days_min=max((p.audit_retention_days_min for p in packs), default=0))
