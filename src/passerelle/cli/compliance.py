"""``passerelle compliance packs|policy``: the shipped packs, and the compliance policies of tenants and keys
set at run time (the admin API's ``/admin/compliance/...``, over the configured store).

    passerelle compliance packs
    passerelle compliance policy set --scope tenant --id acme --packs finance,gdpr --override PHONE=mask
    passerelle compliance policy list|show|delete ...
    passerelle compliance policy effective KEY_ID      (its layers, then the actions that apply)

Running gateways apply a change at their next poll of the store (``store.refresh_interval``); every change is
appended to the audit log (``--actor`` names who made it).  Exit codes:
0 done, 1 refused (not found, conflict, invalid input), 2 bad config or store unreachable.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from passerelle.admin.report_format import text_table
from passerelle.admin.service import AdminService, invalid
from passerelle.admin.validation import parse_overrides, split_list
from passerelle.cli.admin_commands import Output, command_group, command_parser
from passerelle.cli.serve import resolve_home

if TYPE_CHECKING:  # the detectors load when a command runs: the other commands do not pay for them
    from passerelle.admin.compliance import CompliancePolicies
    from passerelle.audit.writer import AuditLog

_COLUMNS = ("scope", "scope_id", "source", "packs", "overrides", "codewords")


def _policies(admin: AdminService, a: argparse.Namespace, audit: AuditLog | None = None) -> CompliancePolicies:
    from passerelle.admin.compliance import CompliancePolicies

    return CompliancePolicies(admin.store, a.loaded_config, audit, getattr(a, "actor", "cli"))


@contextlib.asynccontextmanager
async def _audited(a: argparse.Namespace) -> AsyncIterator[AuditLog]:
    """The audit log a change is recorded in (as the gateway's own changes are), closed once it is written."""
    from passerelle.audit import open_audit

    audit = await open_audit(a.loaded_config, resolve_home(a, a.loaded_config))
    try:
        yield audit
    finally:
        await audit.aclose()


def _cell(value: Any) -> str:
    if value is None:
        return "(inherited)"
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items()) or "-"
    if isinstance(value, list):
        return ", ".join(value) or "-"
    return str(value)


def _overrides(pairs: list[str] | None) -> dict[str, str]:
    try:
        return parse_overrides(pairs or [])
    except ValueError as exc:
        raise invalid(f"--override: {exc}") from None


async def packs(admin: AdminService, a: argparse.Namespace) -> Output:
    from passerelle.admin.compliance import packs_view

    views = packs_view()
    rows = [[v["name"], v["version"], v["route_label"] or "-", str(v["audit_retention_days_min"]),
             str(sum(1 for action in v["actions"].values() if action != "allow"))] for v in views]
    return views, text_table(("name", "version", "route_label", "retention_min_days", "types_acted_on"), rows)


async def policy_set(admin: AdminService, a: argparse.Namespace) -> Output:
    chosen = None if a.packs is None else split_list(a.packs)
    async with _audited(a) as audit:
        policy = await _policies(admin, a, audit).put(a.scope, a.scope_id, chosen, _overrides(a.override),
                                                      a.codeword or [])
    from passerelle.admin.compliance import policy_view

    view = policy_view(policy)
    return view, (f"compliance policy of {view['scope']} {view['scope_id']}: packs {_cell(view['packs'])}; "
                  f"overrides {_cell(view['overrides'])}; {len(view['codewords'])} codewords")


async def policy_list(admin: AdminService, a: argparse.Namespace) -> Output:
    views = await _policies(admin, a).list(a.scope, a.scope_id)
    if not views:
        return views, "no compliance policies"
    rows = [[_cell(v[c]) if c != "codewords" else str(len(v[c])) for c in _COLUMNS] for v in views]
    return views, text_table(_COLUMNS, rows)


async def policy_show(admin: AdminService, a: argparse.Namespace) -> Output:
    view = await _policies(admin, a).get(a.scope, a.scope_id)
    return view, "\n".join(f"{name}: {_cell(value)}" for name, value in view.items())


async def policy_effective(admin: AdminService, a: argparse.Namespace) -> Output:
    view = await _policies(admin, a).effective(a.key_id)
    lines = [f"key {view['key_id']} (tenant {view['tenant']})"]
    lines += [f"  {layer['layer']:<8} {layer['source']:<6} packs {_cell(layer['packs'])}; overrides "
              f"{_cell(layer['overrides'])}; {layer['codewords']} codewords" for layer in view["layers"]]
    if not view["scanned"]:
        lines.append("nothing is scanned for this key")
    else:
        lines.append(f"packs {_cell(view['packs'])}; route label {view['route_label'] or '-'}; audit retention "
                     f"floor {view['audit_retention_days_min']} days")
        lines += [f"  {entity:<24} {action}" for entity, action in view["actions"].items()]
    return view, "\n".join(lines)


async def policy_delete(admin: AdminService, a: argparse.Namespace) -> Output:
    async with _audited(a) as audit:
        await _policies(admin, a, audit).delete(a.scope, a.scope_id)
    return ({"scope": a.scope, "scope_id": a.scope_id, "deleted": True},
            f"deleted the compliance policy of {a.scope} {a.scope_id}")


def _target(p: argparse.ArgumentParser, required: bool = True) -> argparse.ArgumentParser:
    p.add_argument("--scope", choices=("tenant", "key"), required=required)
    p.add_argument("--id", dest="scope_id", required=required, help="the tenant id or key id")
    return p


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    g = command_group(sub, "compliance", "the shipped packs; compliance policies of tenants and keys")
    command_parser(g.add_parser("packs", help="the shipped packs and what they act on"), packs)
    policy = g.add_parser("policy", help="set, list, show, delete the policy of a tenant or key")
    actions = policy.add_subparsers(dest="policy_action", required=True)
    p = _target(command_parser(actions.add_parser("set", help="create or replace the policy of a tenant or key"),
                               policy_set))
    p.add_argument("--packs", help="comma-separated packs (finance,health,defense,gdpr); omitted: inherit the "
                                   "tenant's (a key) or the config's defaults (a tenant); empty: none")
    p.add_argument("--override", action="append", metavar="TYPE=ACTION",
                   help="the action for one entity type, e.g. PHONE=mask (repeatable)")
    p.add_argument("--codeword", action="append", metavar="WORD", help="a programme name to find (repeatable)")
    p.add_argument("--actor", default="cli", help="who makes the change (kept in the audit log)")
    _target(command_parser(actions.add_parser("list"), policy_list), required=False)
    _target(command_parser(actions.add_parser("show"), policy_show))
    command_parser(actions.add_parser("effective", help="what applies to a key: its layers and the merged policy"),
                   policy_effective).add_argument("key_id")
    _target(command_parser(actions.add_parser("delete"), policy_delete)).add_argument(
        "--actor", default="cli", help="who makes the change (kept in the audit log)")
