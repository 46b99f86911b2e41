"""Keys and budgets: a filtered page of keys, create (secret shown once), revoke, budgets and rate limits.
Every write goes through ``AdminService`` and then reloads this instance's policies, like the admin API."""

from __future__ import annotations

import logging

from passerelle.admin.report_format import iso
from passerelle.admin.service import key_view, rate_limit_view
from passerelle.console.html import Html, field, form, hidden, join, page, pager, select, table, tag
from passerelle.console.http import Ctx, Response, html_response
from passerelle.observability.logging import log

PAGE = 50
STATUSES = (("", "any status"), ("active", "active"), ("revoked", "revoked"), ("expired", "expired"))
SCOPES = (("tenant", "tenant"), ("team", "team"), ("key", "key"))


async def changed(ctx: Ctx) -> None:
    try:
        await ctx.gw.policies.refresh()
    except Exception as exc:  # written; the background poll picks it up
        log("policy_refresh_failed", logging.ERROR, error=f"{exc.__class__.__name__}: {exc}")


async def keys(ctx: Ctx, notice: Html | None = None, status: int = 200) -> Response:
    params = {"tenant": ctx.query.get("tenant", ""), "team": ctx.query.get("team", ""),
              "status": ctx.query.get("status", ""), "q": ctx.query.get("q", "")}
    offset = int(ctx.query["offset"]) if ctx.query.get("offset", "").isdigit() else 0
    found, total = await ctx.admin.page_keys(params["tenant"] or None, params["team"] or None,
                                             params["status"] or None, params["q"] or None, offset, PAGE)
    filters = form("/console/keys", field("Search", "q", params["q"], placeholder="id, name or prefix")
                   + field("Tenant", "tenant", params["tenant"]) + field("Team", "team", params["team"])
                   + select("Status", "status", STATUSES, params["status"]), None, method="get", button="Filter")
    rows = []
    for key in found:
        view = key_view(key)
        revoke = (form("/console/keys/revoke", hidden("key_id", key.id), ctx.csrf, button="Revoke",
                       class_="inline", data_confirm=f"Revoke {key.id}?")
                  if view["status"] == "active" else Html(""))
        rows.append([tag("code", key.id), key.name, tag("code", key.prefix + "…"), key.tenant_id, key.team_id or "-",
                     view["status"], ", ".join(key.models) or "all", iso(key.created_at), iso(key.expires_at) or "-",
                     revoke])
    listing = table(["Id", "Name", "Prefix", "Tenant", "Team", "Status", "Models", "Created", "Expires", ""], rows,
                    empty="No key matches these filters.")
    create = form("/console/keys", field("Tenant", "tenant", "", required="required") + field("Team", "team")
                  + field("Name", "name") + field("Models (comma separated)", "models")
                  + field("Expires (e.g. 30d or ISO time)", "expires"), ctx.csrf, button="Create key")
    tenant_form = form("/console/tenants", field("Tenant id", "id", "", required="required")
                       + field("Name", "name"), ctx.csrf, button="Create tenant")
    budgets = await _policies(ctx, params["tenant"])
    body = (filters + pager("/console/keys", params, offset, PAGE, total, len(found)) + listing
            + tag("h2", "Create a key") + create + tag("h2", "Create a tenant") + tenant_form + budgets)
    return html_response(page("Keys & budgets", body, "/console/keys", ctx.csrf, None) if notice is None else
                         page("Keys & budgets", notice + body, "/console/keys", ctx.csrf), status)


async def _policies(ctx: Ctx, tenant: str) -> Html:
    """Budgets and rate limits of the tenant filter (all when none), capped: they are few per scope."""
    scope = ("tenant", tenant) if tenant else (None, None)
    budgets = (await ctx.admin.list_budgets(*scope))[:100]
    limits = [rate_limit_view(r) for r in await ctx.admin.list_rate_limits(*scope)][:200]
    budget_rows = []
    for budget in budgets:  # spend from the shared counter (else the ledger), as the admin API reports it
        b = await ctx.admin.budget_status(budget, ctx.gw.counters)
        budget_rows.append([tag("code", b["id"]), b["scope"], b["scope_id"], b["period"], b["limit_usd"],
                            b["spent_usd"], b["mode"]])
    limit_rows = [[tag("code", r["id"]), r["scope"], r["scope_id"], r["model"] or "all", r["rpm"] or "-",
                   r["tpm"] or "-", r["concurrent"] or "-"] for r in limits]
    budget_form = form("/console/budgets", select("Scope", "scope", SCOPES, "tenant") + field("Scope id", "scope_id")
                       + field("Limit (USD)", "limit_usd") + select("Period", "period", (
                           ("month", "month"), ("day", "day"), ("total", "total")), "month")
                       + select("Mode", "mode", (("hard", "hard"), ("soft", "soft")), "hard")
                       + field("Budget id (to edit one)", "id"), ctx.csrf, button="Save budget")
    limit_form = form("/console/rate-limits", select("Scope", "scope", SCOPES, "tenant") + field("Scope id", "scope_id")
                      + field("Model (blank: all)", "model") + field("Requests/min", "rpm")
                      + field("Tokens/min", "tpm") + field("Concurrent", "concurrent")
                      + field("Limit id (to edit one)", "id"), ctx.csrf, button="Save rate limit")
    budget_table = table(["Id", "Scope", "Scope id", "Period", "Limit (USD)", "Spent (USD)", "Mode"], budget_rows,
                         numeric=(4, 5), empty="No budget.")
    return join([tag("h2", "Budgets"), budget_table, budget_form,
                 tag("h2", "Rate limits"), table(["Id", "Scope", "Scope id", "Model", "RPM", "TPM", "Concurrent"],
                                                 limit_rows, numeric=(4, 5, 6), empty="No rate limit."), limit_form])


async def create_key(ctx: Ctx) -> Response:
    models = [m.strip() for m in ctx.arg("models").split(",") if m.strip()]
    created = await ctx.admin.create_key(ctx.opt("tenant"), ctx.opt("team"), ctx.arg("name"), models, (),
                                         ctx.opt("expires"))
    await changed(ctx)
    log("admin_key_created", key_id=created.key.id, tenant=created.key.tenant_id, prefix=created.key.prefix,
        via="console")
    notice = tag("div", tag("p", f"Key {created.key.id} created. Copy its secret now: it is shown only once.")
                 + tag("p", created.secret, class_="secret", id="new-secret", data_copy=created.secret),
                 class_="notice")
    ctx.query = {"tenant": created.key.tenant_id}
    return await keys(ctx, notice, 201)


async def create_tenant(ctx: Ctx) -> Response:
    tenant = await ctx.admin.create_tenant(ctx.arg("id"), ctx.opt("name"))
    await changed(ctx)
    ctx.query = {}
    return await keys(ctx, tag("p", f"Tenant {tenant.id} created.", class_="notice"), 201)


async def revoke_key(ctx: Ctx) -> Response:
    key = await ctx.admin.revoke_key(ctx.arg("key_id"))
    await changed(ctx)
    log("admin_key_revoked", key_id=key.id, tenant=key.tenant_id, via="console")
    ctx.query = {}
    return await keys(ctx, tag("p", f"Key {key.id} revoked.", class_="notice"))


def _int(ctx: Ctx, name: str) -> int | None:
    return ctx.int_arg(name, 0, 1) or None


async def put_budget(ctx: Ctx) -> Response:
    budget = await ctx.admin.put_budget(ctx.arg("scope"), ctx.arg("scope_id"), ctx.arg("limit_usd"),
                                        ctx.arg("period", "month"), ctx.arg("mode", "hard"), None, ctx.opt("id"))
    await changed(ctx)
    ctx.query = {}
    return await keys(ctx, tag("p", f"Budget {budget.id} saved: {budget.limit_usd} USD per {budget.period} on "
                                    f"{budget.scope} {budget.scope_id}.", class_="notice"))


async def put_rate_limit(ctx: Ctx) -> Response:
    limit = await ctx.admin.put_rate_limit(ctx.arg("scope"), ctx.arg("scope_id"), ctx.opt("model"), _int(ctx, "rpm"),
                                           _int(ctx, "tpm"), _int(ctx, "concurrent"), ctx.opt("id"))
    await changed(ctx)
    ctx.query = {}
    return await keys(ctx, tag("p", f"Rate limit {limit.id} saved.", class_="notice"))
