"""The skills marketplace, per tenant: browse, search, versions, signature, risk report, install."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar

from passerelle.admin.report_format import iso
from passerelle.admin.service import AdminError
from passerelle.console.html import Html, field, form, hidden, join, page, select, table, tag, url
from passerelle.console.http import Ctx, Response, html_response
from passerelle.server.skills_gateway import registry_for
from passerelle.skills.records import SearchQuery
from passerelle.skills.registry import SkillError

_T = TypeVar("_T")
RISKS = (("", "any risk"), ("low", "low"), ("medium", "medium or lower"), ("high", "high or lower"))


async def _skills(call: Awaitable[_T]) -> _T:
    try:
        return await call
    except SkillError as exc:
        raise AdminError(400, "invalid_request_error", str(exc)) from None
    except LookupError as exc:
        raise AdminError(404, "not_found_error", str(exc) or "no such skill") from None


async def skills(ctx: Ctx) -> Response:
    tenant = ctx.query.get("tenant", "default")
    text = ctx.query.get("q", "")
    risk = ctx.query.get("max_risk", "")
    registry = await registry_for(ctx.gw)
    hits = await _skills(registry.search(tenant, SearchQuery(text=text, max_risk=risk or None, limit=50)))
    rows = [[tag("a", h.skill.name, href=url("/console/skills/show", {"tenant": tenant, "name": h.skill.name})),
             h.version.version, h.version.description, h.publisher or "-",
             "signed" if h.version.signature else "unsigned",
             h.version.risk_level, h.skill.install_count] for h in hits]
    filters = form("/console/skills", field("Tenant", "tenant", tenant) + field("Search", "q", text)
                   + select("Risk", "max_risk", RISKS, risk), None, method="get", button="Search")
    body = filters + table(["Skill", "Latest", "Description", "Publisher", "Signature", "Risk", "Installs"], rows,
                           numeric=(6,), empty="No skill matches.")
    return html_response(page("Skills marketplace", body, "/console/skills", ctx.csrf))


async def skill_detail(ctx: Ctx, notice: Html | None = None) -> Response:
    tenant, name = ctx.arg("tenant", "default"), ctx.arg("name")
    registry = await registry_for(ctx.gw)
    skill, versions = await _skills(registry.show(tenant, name))
    rows = []
    for v in versions:
        verdict = await _skills(registry.verify(tenant, skill.name, v.version))
        findings = v.risk_report.get("findings") if isinstance(v.risk_report, dict) else None
        rows.append([v.version, iso(v.created_at), v.risk_level,
                     "; ".join(str(f.get("message", f)) if isinstance(f, dict) else str(f) for f in findings or [])
                     or "-", verdict.signature, tag("span", "intact" if verdict.ok else "TAMPERED",
                                                     class_="ok" if verdict.ok else "bad"),
                     "yanked" if v.yanked_at else "", tag("code", v.digest[:19])])
    install = form("/console/skills/install", hidden("tenant", tenant) + hidden("name", skill.name)
                   + select("Scope", "scope", (("tenant", "tenant"), ("team", "team"), ("key", "key")), "tenant")
                   + field("Scope id", "scope_id", tenant) + field("Version (blank: follow latest)", "version"),
                   ctx.csrf, button="Install")
    body = join([notice or Html(""), tag("p", f"{skill.display_title} — owner {skill.tenant_id}, {skill.visibility}, "
                                              f"{skill.install_count} installs."),
                 table(["Version", "Published", "Risk", "Risk report", "Signature", "Files", "", "Digest"], rows,
                       empty="No version."), tag("h2", "Install"), install])
    return html_response(page(f"Skill {skill.name}", body, "/console/skills", ctx.csrf))


async def install_skill(ctx: Ctx) -> Response:
    registry = await registry_for(ctx.gw)
    done = await _skills(registry.install(ctx.arg("tenant"), ctx.arg("scope"), ctx.arg("scope_id"), ctx.arg("name"),
                                          ctx.opt("version")))
    return await skill_detail(ctx, tag("p", f"Installed for {done.scope} {done.scope_id} ({done.id}).",
                                       class_="notice"))
