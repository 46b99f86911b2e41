"""The admin API: every path under /admin/, for the operator's admin key only.

JSON in and out; errors as ``{"error": {"type", "message"}}`` with 400 (bad JSON or fields),
401/403 (key), 404, 405 (method), 409 (conflict), 413 (body too large).  Every write reloads this
instance's policies at once; other instances see it at their next poll (``store.refresh_interval``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar
from urllib.parse import parse_qsl

import msgspec

from passerelle.admin.report_format import report_csv, report_json, report_table
from passerelle.admin.service import (
    AdminError,
    AdminService,
    budget_view,
    created_key_view,
    invalid,
    key_view,
    not_found,
    rate_limit_view,
    team_view,
    tenant_view,
)
from passerelle.admin.validation import NewBudget, NewKey, NewRateLimit, NewTeam, NewTenant
from passerelle.errors import ErrorKind, GatewayError
from passerelle.observability.logging import log
from passerelle.server.aiact_admin import ROUTES as AIACT_ROUTES
from passerelle.server.asgi import BodyTooLarge, ClientDisconnected, Receive, Scope, Send, read_body, send_bytes
from passerelle.server.chat import new_request_id, response_headers
from passerelle.server.compliance_admin import ROUTES as COMPLIANCE_ROUTES
from passerelle.server.gateway import Gateway
from passerelle.server.skills_admin import ROUTES as SKILL_ROUTES

# JSON numbers with a fraction become Decimals, so "limit_usd": 12.34 stays exact.
_decoder = msgspec.json.Decoder(float_hook=Decimal)
_S = TypeVar("_S", bound=msgspec.Struct)
Reply = tuple[int, Any]


@dataclass(slots=True)
class Call:
    gw: Gateway
    admin: AdminService
    args: list[str]  # the path's variable parts
    query: dict[str, str]
    scope: Scope
    receive: Receive
    headers: Mapping[str, str]

    def params(self, *allowed: str) -> dict[str, str]:
        unknown = sorted(set(self.query) - set(allowed))
        if unknown:
            raise invalid(f"unknown query parameter {unknown[0]!r}; expected {', '.join(allowed) or 'none'}")
        return {k: v for k, v in self.query.items() if v != ""}

    async def body(self, kind: type[_S]) -> _S:
        limit = self.gw.config.server.max_body_bytes
        try:
            raw = await read_body(self.receive, limit, self.headers.get("content-length"))
        except BodyTooLarge:
            raise AdminError(413, "request_too_large", f"request body exceeds the {limit} byte limit") from None
        if not raw.strip():
            raise invalid("request body is empty: expected a JSON object")
        try:
            return msgspec.convert(_decoder.decode(raw), kind)
        except msgspec.ValidationError as exc:
            raise invalid(f"invalid request body: {exc}") from None
        except msgspec.DecodeError as exc:
            raise invalid(f"request body is not valid JSON: {exc}") from None

    async def changed(self) -> None:
        """Load the new policies now, so this instance enforces a write (a revocation) at once."""
        try:
            await self.gw.policies.refresh()
        except Exception as exc:  # the write is done; the background poll will pick it up
            log("policy_refresh_failed", logging.ERROR, error=f"{exc.__class__.__name__}: {exc}")


Op = Callable[[Call], Awaitable[Reply]]


async def list_tenants(c: Call) -> Reply:
    c.params()
    return 200, {"data": [tenant_view(t) for t in await c.admin.list_tenants()]}


async def create_tenant(c: Call) -> Reply:
    c.params()
    new = await c.body(NewTenant)
    tenant = await c.admin.create_tenant(new.id, new.name, new.metadata)
    await c.changed()
    return 201, tenant_view(tenant)


async def get_tenant(c: Call) -> Reply:
    c.params()
    return 200, tenant_view(await c.admin.get_tenant(c.args[0]))


async def delete_tenant(c: Call) -> Reply:
    c.params()
    await c.admin.delete_tenant(c.args[0])
    await c.changed()
    return 200, {"id": c.args[0], "deleted": True}


async def list_teams(c: Call) -> Reply:
    q = c.params("tenant")
    return 200, {"data": [team_view(t) for t in await c.admin.list_teams(q.get("tenant"))]}


async def create_team(c: Call) -> Reply:
    c.params()
    new = await c.body(NewTeam)
    team = await c.admin.create_team(new.id, new.tenant, new.name, new.metadata)
    await c.changed()
    return 201, team_view(team)


async def get_team(c: Call) -> Reply:
    c.params()
    team_id = "/".join(c.args)
    for team in await c.admin.list_teams(c.args[0]):
        if team.id == team_id:
            return 200, team_view(team)
    raise not_found(f"no team '{team_id}'")


async def delete_team(c: Call) -> Reply:
    c.params()
    team_id = "/".join(c.args)
    await c.admin.delete_team(team_id)
    await c.changed()
    return 200, {"id": team_id, "deleted": True}


async def list_keys(c: Call) -> Reply:
    q = c.params("tenant", "team")
    keys = await c.admin.list_keys(q.get("tenant"), q.get("team"))
    return 200, {"data": [key_view(k) for k in keys]}


async def create_key(c: Call) -> Reply:
    c.params()
    new = await c.body(NewKey)
    created = await c.admin.create_key(new.tenant, new.team, new.name, new.models, new.routes, new.expires,
                                       new.metadata)
    await c.changed()
    log("admin_key_created", key_id=created.key.id, tenant=created.key.tenant_id, prefix=created.key.prefix)
    return 201, created_key_view(created)


async def get_key(c: Call) -> Reply:
    c.params()
    return 200, key_view(await c.admin.get_key(c.args[0]))


async def revoke_key(c: Call) -> Reply:
    c.params()
    key = await c.admin.revoke_key(c.args[0])
    await c.changed()
    log("admin_key_revoked", key_id=key.id, tenant=key.tenant_id)
    return 200, key_view(key)


async def list_budgets(c: Call) -> Reply:
    q = c.params("scope", "scope_id")
    return 200, {"data": [budget_view(b) for b in await c.admin.list_budgets(q.get("scope"), q.get("scope_id"))]}


async def put_budget(c: Call) -> Reply:
    c.params()
    new = await c.body(NewBudget)
    budget = await c.admin.put_budget(new.scope, new.scope_id, new.limit_usd, new.period, new.mode, new.webhook,
                                      new.id)
    await c.changed()
    return 201, budget_view(budget)


async def delete_budget(c: Call) -> Reply:
    c.params()
    await c.admin.delete_budget(c.args[0])
    await c.changed()
    return 200, {"id": c.args[0], "deleted": True}


async def budget_status(c: Call) -> Reply:
    c.params()
    # The compiled policies also hold the budgets declared in the config file.
    for budgets in c.gw.policies.current.budgets.values():
        for budget in budgets:
            if budget.id == c.args[0]:
                return 200, await c.admin.budget_status(budget, c.gw.counters)
    raise not_found(f"no budget '{c.args[0]}'")


async def list_rate_limits(c: Call) -> Reply:
    q = c.params("scope", "scope_id")
    limits = await c.admin.list_rate_limits(q.get("scope"), q.get("scope_id"))
    return 200, {"data": [rate_limit_view(r) for r in limits]}


async def put_rate_limit(c: Call) -> Reply:
    c.params()
    new = await c.body(NewRateLimit)
    limit = await c.admin.put_rate_limit(new.scope, new.scope_id, new.model, new.rpm, new.tpm, new.concurrent,
                                         new.id)
    await c.changed()
    return 201, rate_limit_view(limit)


async def delete_rate_limit(c: Call) -> Reply:
    c.params()
    await c.admin.delete_rate_limit(c.args[0])
    await c.changed()
    return 200, {"id": c.args[0], "deleted": True}


async def usage(c: Call) -> Reply:
    q = c.params("by", "since", "until", "tenant", "format")
    fmt = q.get("format", "json")
    if fmt not in ("json", "csv", "text"):
        raise invalid("format: expected json, csv or text")
    report = await c.admin.usage(q.get("by"), q.get("since"), q.get("until"), q.get("tenant"))
    if fmt == "csv":
        return 200, ("text/csv; charset=utf-8", report_csv(report))
    if fmt == "text":
        return 200, ("text/plain; charset=utf-8", report_table(report) + "\n")
    return 200, report_json(report)


# (path pattern, {method: operation}); "*" matches one path segment.
ROUTES: list[tuple[tuple[str, ...], dict[str, Op]]] = [
    (("tenants",), {"GET": list_tenants, "POST": create_tenant}),
    (("tenants", "*"), {"GET": get_tenant, "DELETE": delete_tenant}),
    (("teams",), {"GET": list_teams, "POST": create_team}),
    (("teams", "*", "*"), {"GET": get_team, "DELETE": delete_team}),
    (("keys",), {"GET": list_keys, "POST": create_key}),
    (("keys", "*"), {"GET": get_key}),
    (("keys", "*", "revoke"), {"POST": revoke_key}),
    (("budgets",), {"GET": list_budgets, "POST": put_budget}),
    (("budgets", "*"), {"DELETE": delete_budget}),
    (("budgets", "*", "status"), {"GET": budget_status}),
    (("rate-limits",), {"GET": list_rate_limits, "POST": put_rate_limit}),
    (("rate-limits", "*"), {"DELETE": delete_rate_limit}),
    (("usage",), {"GET": usage}),
    *SKILL_ROUTES,  # /admin/skills..., /admin/skill-installs, /admin/skill-publishers
    *AIACT_ROUTES,  # /admin/aiact/...: purposes, switches, bindings, registers, reports
    *COMPLIANCE_ROUTES,  # /admin/compliance/...: packs, policies of tenants and keys
]


def match(path: str) -> tuple[dict[str, Op], list[str]] | None:
    parts = path.removeprefix("/admin/").strip("/").split("/")
    for pattern, methods in ROUTES:
        if len(pattern) == len(parts) and all(p in ("*", s) and s for p, s in zip(pattern, parts, strict=True)):
            return methods, [s for p, s in zip(pattern, parts, strict=True) if p == "*"]
    return None


async def handle_admin(gw: Gateway, scope: Scope, receive: Receive, send: Send, headers: Mapping[str, str]) -> None:
    request_id = headers.get("x-request-id") or new_request_id()
    out = {**response_headers(request_id), "cache-control": "no-store"}  # answers may hold a key's secret
    method: str = scope["method"]
    try:
        gw.keys.admin(headers)
        found = match(scope["path"])
        if found is None:
            raise not_found(f"no admin route {scope['path']}")
        methods, args = found
        op = methods.get(method)
        if op is None:
            out["allow"] = ", ".join(methods)
            raise AdminError(405, "invalid_request_error", f"{method} {scope['path']} is not supported; "
                             f"use {' or '.join(methods)}")
        raw_query: bytes = scope.get("query_string", b"")
        query = dict(parse_qsl(raw_query.decode("latin-1"), keep_blank_values=True))
        status, body = await op(Call(gw, AdminService(gw.store), args, query, scope, receive, headers))
    except GatewayError as err:
        status, body = err.status, _error(err.kind.anthropic_type, err.message)
    except AdminError as err:
        status, body = err.status, _error(err.kind, err.message)
    except ClientDisconnected:
        raise  # nobody to answer: the app drops the request
    except Exception as exc:  # a bug or the store down: details in our log only
        log("admin_error", logging.ERROR, request_id=request_id, path=scope["path"],
            error=f"{exc.__class__.__name__}: {exc}")
        kind = ErrorKind.API_ERROR
        status, body = kind.status, _error(kind.anthropic_type, "internal error in the admin API")
    if method != "GET" and status < 400:
        log("admin_write", method=method, path=scope["path"], status=status, request_id=request_id)
    if isinstance(body, tuple):
        content_type, text = body
        await send_bytes(send, status, text.encode(), out, content_type=content_type)
    else:
        await send_bytes(send, status, msgspec.json.encode(body), out)


def _error(kind: str, message: str) -> dict[str, Any]:
    return {"error": {"type": kind, "message": message}}
