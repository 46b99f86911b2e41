"""``passerelle tenants|teams|keys|budgets|limits|usage``: the admin service over the configured store.

Exit codes: 0 done, 1 refused (not found, conflict, invalid input), 2 bad config or store unreachable.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from passerelle.admin.report_format import report_csv, report_json, report_table, text_table
from passerelle.admin.service import (
    AdminError,
    AdminService,
    budget_view,
    created_key_view,
    key_view,
    rate_limit_view,
    team_ref,
    team_view,
    tenant_view,
)
from passerelle.admin.validation import parse_metadata, split_list
from passerelle.cli.options import add_store_options, report_error
from passerelle.cli.serve import load, resolve_home

# An operation returns what --json prints, and the text people read.
Output = tuple[Any, str]
Command = Callable[[AdminService, argparse.Namespace], Awaitable[Output]]


def _table(views: Sequence[dict[str, Any]], columns: Sequence[str], empty: str) -> str:
    if not views:
        return empty
    rows = [[", ".join(v[c]) if isinstance(v[c], list) else v[c] for c in columns] for v in views]
    return text_table(columns, rows)


def _one(view: dict[str, Any]) -> str:
    return "\n".join(f"{name}: {'-' if value in (None, [], {}) else value}" for name, value in view.items())


async def tenants_create(admin: AdminService, a: argparse.Namespace) -> Output:
    view = tenant_view(await admin.create_tenant(a.tenant_id, a.name, _metadata(a)))
    return view, f"created tenant {view['id']}"


async def tenants_list(admin: AdminService, a: argparse.Namespace) -> Output:
    views = [tenant_view(t) for t in await admin.list_tenants()]
    return views, _table(views, ("id", "name", "created_at"), "no tenants")


async def tenants_delete(admin: AdminService, a: argparse.Namespace) -> Output:
    await admin.delete_tenant(a.tenant_id)
    return {"id": a.tenant_id, "deleted": True}, f"deleted tenant {a.tenant_id}"


async def teams_create(admin: AdminService, a: argparse.Namespace) -> Output:
    view = team_view(await admin.create_team(a.team, a.tenant, a.name, _metadata(a)))
    return view, f"created team {view['id']}"


async def teams_list(admin: AdminService, a: argparse.Namespace) -> Output:
    views = [team_view(t) for t in await admin.list_teams(a.tenant)]
    return views, _table(views, ("id", "tenant", "name", "created_at"), "no teams")


async def teams_delete(admin: AdminService, a: argparse.Namespace) -> Output:
    await admin.delete_team(a.team, a.tenant)
    team_id = team_ref(a.team, a.tenant)
    return {"id": team_id, "deleted": True}, f"deleted team {team_id}"


async def keys_create(admin: AdminService, a: argparse.Namespace) -> Output:
    created = await admin.create_key(a.tenant, a.team, a.name or "", split_list(a.models), split_list(a.routes),
                                     a.expires, _metadata(a))
    # The warning goes to stderr so that stdout stays the secret (or the JSON) for scripts.
    print("warning: store this secret now: it is not kept and will not be shown again", file=sys.stderr)
    view = created_key_view(created)
    text = f"created key {view['id']} for {view['team'] or view['tenant']}\n{created.secret}"
    return view, text


async def keys_list(admin: AdminService, a: argparse.Namespace) -> Output:
    views = [key_view(k) for k in await admin.list_keys(a.tenant, a.team)]
    return views, _table(views, ("id", "prefix", "name", "tenant", "team", "status", "models", "expires_at"),
                         "no keys")


async def keys_show(admin: AdminService, a: argparse.Namespace) -> Output:
    view = key_view(await admin.get_key(a.key_id))
    return view, _one(view)


async def keys_revoke(admin: AdminService, a: argparse.Namespace) -> Output:
    view = key_view(await admin.revoke_key(a.key_id))
    return view, f"revoked key {view['id']} at {view['revoked_at']}"


async def budgets_set(admin: AdminService, a: argparse.Namespace) -> Output:
    view = budget_view(await admin.put_budget(a.scope, a.scope_id, a.limit_usd, a.period, a.mode, a.webhook))
    return view, (f"budget {view['id']}: {view['mode']} {view['limit_usd']} USD per {view['period']} "
                  f"on {view['scope']} {view['scope_id']}")


async def budgets_list(admin: AdminService, a: argparse.Namespace) -> Output:
    views = [budget_view(b) for b in await admin.list_budgets(a.scope, a.scope_id)]
    return views, _table(views, ("id", "scope", "scope_id", "period", "limit_usd", "mode", "webhook"), "no budgets")


async def budgets_delete(admin: AdminService, a: argparse.Namespace) -> Output:
    await admin.delete_budget(a.budget_id)
    return {"id": a.budget_id, "deleted": True}, f"deleted budget {a.budget_id}"


async def limits_set(admin: AdminService, a: argparse.Namespace) -> Output:
    view = rate_limit_view(await admin.put_rate_limit(a.scope, a.scope_id, a.model, a.rpm, a.tpm, a.concurrent))
    return view, f"rate limit {view['id']} on {view['scope']} {view['scope_id']}"


async def limits_list(admin: AdminService, a: argparse.Namespace) -> Output:
    views = [rate_limit_view(r) for r in await admin.list_rate_limits(a.scope, a.scope_id)]
    return views, _table(views, ("id", "scope", "scope_id", "model", "rpm", "tpm", "concurrent"), "no rate limits")


async def limits_delete(admin: AdminService, a: argparse.Namespace) -> Output:
    await admin.delete_rate_limit(a.limit_id)
    return {"id": a.limit_id, "deleted": True}, f"deleted rate limit {a.limit_id}"


async def usage(admin: AdminService, a: argparse.Namespace) -> Output:
    report = await admin.usage(a.by, a.since, a.until, a.tenant)
    return report_json(report), report_csv(report).rstrip("\n") if a.csv else report_table(report)


def _metadata(a: argparse.Namespace) -> dict[str, str]:
    try:
        return parse_metadata(a.metadata or [])
    except ValueError as exc:
        raise AdminError(400, "invalid_request_error", str(exc)) from None


async def _run(command: Command, a: argparse.Namespace) -> int:
    config = load(a)
    if config is None:
        return 2
    from passerelle.stores.factory import open_stores  # the server's imports, only once a command runs

    try:
        store, counters = await open_stores(config, resolve_home(a, config))
    except Exception as exc:
        print(f"passerelle: cannot open the store: {exc.__class__.__name__}: {exc}", file=sys.stderr)
        return 2
    a.loaded_config = config  # for the commands that check against the config file (compliance policies)
    try:
        payload, text = await command(AdminService(store), a)
    except AdminError as err:
        report_error(a.json, err.kind, err.message)
        return 1
    finally:
        await counters.aclose()
        await store.aclose()
    print(json.dumps(payload, indent=2) if a.json else text)
    return 0


def run(a: argparse.Namespace) -> int:
    return asyncio.run(_run(a.command_func, a))


def command_parser(p: argparse.ArgumentParser, func: Command) -> argparse.ArgumentParser:
    add_store_options(p)
    p.set_defaults(func=run, command_func=func)
    return p


def command_group(sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str,
                  help_: str) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    return sub.add_parser(name, help=help_).add_subparsers(dest="action", required=True)


def _scope_args(p: argparse.ArgumentParser, required: bool) -> None:
    p.add_argument("--scope", choices=("key", "team", "tenant"), required=required)
    p.add_argument("--id", dest="scope_id", required=required, help="the key id, team id (tenant/team) or tenant id")


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    g = command_group(sub, "tenants", "create, list, delete tenants")
    p = command_parser(g.add_parser("create"), tenants_create)
    p.add_argument("tenant_id")
    p.add_argument("--name")
    p.add_argument("--metadata", action="append", metavar="K=V")
    command_parser(g.add_parser("list"), tenants_list)
    command_parser(g.add_parser("delete"), tenants_delete).add_argument("tenant_id")

    g = command_group(sub, "teams", "create, list, delete teams within tenants")
    p = command_parser(g.add_parser("create"), teams_create)
    p.add_argument("team", help="tenant/team, or team with --tenant")
    p.add_argument("--tenant")
    p.add_argument("--name")
    p.add_argument("--metadata", action="append", metavar="K=V")
    command_parser(g.add_parser("list"), teams_list).add_argument("--tenant")
    p = command_parser(g.add_parser("delete"), teams_delete)
    p.add_argument("team", help="tenant/team, or team with --tenant")
    p.add_argument("--tenant")

    g = command_group(sub, "keys", "create, list, show, revoke virtual keys")
    p = command_parser(g.add_parser("create", help="create a key and print its secret, once"), keys_create)
    p.add_argument("--tenant")
    p.add_argument("--team", help="tenant/team, or team with --tenant")
    p.add_argument("--name")
    p.add_argument("--models", help="allowed models or aliases, comma-separated (globs allowed); default all")
    p.add_argument("--routes", help="allowed routes: messages,chat_completions,count_tokens,models; default all")
    p.add_argument("--expires", help="a duration like 90d, or an ISO date or datetime")
    p.add_argument("--metadata", action="append", metavar="K=V")
    p = command_parser(g.add_parser("list"), keys_list)
    p.add_argument("--tenant")
    p.add_argument("--team")
    command_parser(g.add_parser("show"), keys_show).add_argument("key_id")
    command_parser(g.add_parser("revoke"), keys_revoke).add_argument("key_id")

    g = command_group(sub, "budgets", "set, list, delete spending budgets")
    p = command_parser(g.add_parser("set", help="create or replace the budget of a scope, period and mode"),
                       budgets_set)
    _scope_args(p, required=True)
    p.add_argument("--period", choices=("day", "month", "total"), default="month")
    p.add_argument("--limit-usd", required=True)
    p.add_argument("--mode", choices=("hard", "soft"), default="hard")
    p.add_argument("--webhook", help="soft budgets: URL POSTed once per period when crossed")
    _scope_args(command_parser(g.add_parser("list"), budgets_list), required=False)
    command_parser(g.add_parser("delete"), budgets_delete).add_argument("budget_id")

    g = command_group(sub, "limits", "set, list, delete rate limits")
    p = command_parser(g.add_parser("set", help="create or replace the rate limit of a scope and model"), limits_set)
    _scope_args(p, required=True)
    p.add_argument("--model", help="one alias; default: all models together")
    p.add_argument("--rpm", type=int, help="requests per minute")
    p.add_argument("--tpm", type=int, help="tokens per minute")
    p.add_argument("--concurrent", type=int, help="requests in flight")
    _scope_args(command_parser(g.add_parser("list"), limits_list), required=False)
    command_parser(g.add_parser("delete"), limits_delete).add_argument("limit_id")

    p = command_parser(sub.add_parser("usage", help="usage and cost report from the ledger"), usage)
    p.add_argument("--by", default="", help="comma-separated: tenant,team,key,model,deployment,provider,route,"
                                            "status,cache_hit,day,month")
    p.add_argument("--since", help="a duration back from now (30d, 12h, 90m, 2w) or an ISO date or datetime")
    p.add_argument("--until", help="exclusive end, same forms as --since")
    p.add_argument("--tenant")
    p.add_argument("--csv", action="store_true", help="print CSV (one line per group, no totals line)")
