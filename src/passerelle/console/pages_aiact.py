"""The AI Act registry: purposes (paged) with their suspend switch and report download, route
switches, the risk, supplier and incident registers, alerts.  Uses the AI Act registry and store the
admin API uses (``/admin/aiact/...``), and reloads this instance's registry after every switch."""

from __future__ import annotations

import time
from collections.abc import Awaitable
from typing import Literal, TypeVar, cast

from passerelle.admin.report_format import iso
from passerelle.admin.service import AdminError, invalid
from passerelle.aiact.dora import register_csv
from passerelle.aiact.records import STATUSES
from passerelle.aiact.registry import AiActRegistry
from passerelle.aiact.report import gather
from passerelle.aiact.report_html import render
from passerelle.aiact.rules import RuleError, incident_state
from passerelle.console.html import Html, field, form, hidden, join, link, page, pager, select, table, tag, url
from passerelle.console.http import Ctx, Response, html_response
from passerelle.stores.base import NotFound

PAGE = 50
_T = TypeVar("_T")


async def _rules(call: Awaitable[_T]) -> _T:
    try:
        return await call
    except RuleError as exc:
        raise invalid(str(exc)) from None
    except NotFound as exc:
        raise AdminError(404, "not_found_error", str(exc) or "not found") from None


def _registry(ctx: Ctx) -> AiActRegistry:
    return AiActRegistry(ctx.gw.aiact.store, ctx.gw.audit)


async def aiact(ctx: Ctx, notice: Html | None = None) -> Response:
    reg = _registry(ctx)
    status = ctx.query.get("status", "")
    if status and status not in STATUSES:
        raise invalid(f"status: expected one of {', '.join(STATUSES)}")
    offset = ctx.int_arg("offset", 0) if ctx.method == "GET" else 0
    purposes = await reg.store.list_purposes(status or None, PAGE, offset)
    switches = await reg.store.list_suspensions()
    suspended = {s.target for s in switches if s.kind == "purpose"}
    rows = []
    for p in purposes.items:
        if p.id in suspended:
            action = form("/console/aiact/resume", hidden("kind", "purpose") + hidden("target", p.id), ctx.csrf,
                          button="Resume", class_="inline")
        else:
            action = form("/console/aiact/suspend", hidden("kind", "purpose") + hidden("target", p.id)
                          + field("Reason", "reason", "", required="required"), ctx.csrf, button="Suspend",
                          class_="inline", data_confirm=f"Suspend every request of {p.id}?")
        risk = p.risk_class + (f" (Annex III {p.annex_category})" if p.annex_category else "")
        rows.append([tag("code", p.id), p.name, risk, p.overseer, p.status,
                     tag("span", "SUSPENDED", class_="bad") if p.id in suspended else "running", p.version,
                     link(url("/console/aiact/report", {"purpose": p.id}), "Report"), action])
    filters = form("/console/aiact", select("Status", "status", (("", "any status"), *((s, s) for s in STATUSES)),
                                            status), None, method="get", button="Filter")
    route_form = form("/console/aiact/suspend", hidden("kind", "route") + field("Route", "target", "",
                                                                                 required="required")
                      + field("Reason", "reason", "", required="required"), ctx.csrf, button="Suspend route")
    switch_rows = [[s.kind, tag("code", s.target), s.reason, s.actor, iso(s.at),
                    form("/console/aiact/resume", hidden("kind", s.kind) + hidden("target", s.target), ctx.csrf,
                         button="Resume", class_="inline")] for s in switches]
    body = join([notice or Html(""), filters,
                 pager("/console/aiact", {"status": status}, offset, PAGE, purposes.total, len(purposes.items)),
                 table(["Purpose", "Name", "Risk class", "Overseer", "Status", "Switch", "Version", "", ""], rows,
                       numeric=(6,), empty="No purpose registered (passerelle aiact purpose put, or the admin API)."),
                 tag("h2", "Suspend switches"), table(["Kind", "Target", "Reason", "By", "Since", ""], switch_rows,
                                                      empty="Nothing is suspended."), route_form,
                 await _registers(reg)])
    return html_response(page("AI Act registry", body, "/console/aiact", ctx.csrf))


async def _registers(reg: AiActRegistry) -> Html:
    """Risks, suppliers and incidents are a few per purpose: shown whole, capped; alerts are paged."""
    now = time.time()
    overdue = {r.id for r in await reg.overdue_risks(now)}
    risks = [[tag("code", r.purpose_id), r.title, r.likelihood, r.severity, r.score, r.residual, r.review_due
              + (" (overdue)" if r.id in overdue else ""), r.signed_off_by or "not signed off"]
             for r in (await reg.store.list_risks(None))[:200]]
    suppliers = [[s.provider, s.model, "yes" if s.documented else "missing", s.code_of_practice, s.region or "-",
                  s.contract_ref or "-"] for s in (await reg.store.list_suppliers())[:200]]
    incidents = [[tag("code", i.purpose_id), i.title, i.severity, iso(i.deadline), incident_state(i, now)]
                 for i in (await reg.store.list_incidents(None))[:200]]
    alerts = await reg.store.list_alerts(None, 20, 0)
    alert_rows = [[a.kind, a.day, tag("code", a.key_id), tag("code", a.purpose_id), a.message] for a in alerts.items]
    return join([
        tag("h2", "Risk register"), table(["Purpose", "Risk", "Likelihood", "Severity", "Score", "Residual",
                                           "Review due", "Sign-off"], risks, numeric=(2, 3, 4), empty="No risk."),
        tag("h2", "Supplier register"), tag("p", link("/console/aiact/dora.csv", "Download the DORA register (CSV)")),
        table(["Provider", "Model", "Documents", "Code of Practice", "Region", "Contract"], suppliers,
              empty="No supplier."),
        tag("h2", "Serious incidents"), table(["Purpose", "Incident", "Severity", "Art 73 deadline", "State"],
                                              incidents, empty="No incident."),
        tag("h2", f"Latest alerts ({alerts.total})"), table(["Kind", "Day", "Key", "Purpose", "Message"], alert_rows,
                                                            empty="No alert.")])


def _kind(ctx: Ctx) -> Literal["purpose", "route"]:
    kind = ctx.arg("kind")
    if kind not in ("purpose", "route"):
        raise invalid("kind: expected purpose or route")
    return cast(Literal["purpose", "route"], kind)


async def suspend(ctx: Ctx) -> Response:
    kind, target, reason = _kind(ctx), ctx.arg("target"), ctx.arg("reason").strip()
    if not reason:
        raise invalid("reason: required (it goes to the audit log)")
    changed = await _rules(_registry(ctx).suspend(kind, target, reason[:500], "console"))
    await ctx.gw.aiact.refresh()
    ctx.query = {}
    said = "is suspended: its requests are refused" if changed else "was already suspended"
    return await aiact(ctx, tag("p", f"The {kind} {target} {said}.", class_="notice", id="switch-notice"))


async def resume(ctx: Ctx) -> Response:
    kind, target = _kind(ctx), ctx.arg("target")
    changed = await _rules(_registry(ctx).resume(kind, target, "console"))
    await ctx.gw.aiact.refresh()
    ctx.query = {}
    said = "is resumed" if changed else "was not suspended"
    return await aiact(ctx, tag("p", f"The {kind} {target} {said}.", class_="notice", id="switch-notice"))


async def report(ctx: Ctx) -> Response:
    purpose = ctx.arg("purpose")
    evidence = await _rules(gather(purpose, ctx.gw.aiact.store, ctx.gw.store, ctx.gw.audit.store, ctx.gw.config))
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in purpose)[:80]
    return Response(200, render(evidence).encode(), "text/html; charset=utf-8",
                    [("content-disposition", f'attachment; filename="ai-act-{safe}.html"')])


async def dora_csv(ctx: Ctx) -> Response:
    suppliers = await _registry(ctx).store.list_suppliers()
    return Response(200, register_csv(suppliers).encode(), "text/csv; charset=utf-8",
                    [("content-disposition", 'attachment; filename="dora-register.csv"')])
