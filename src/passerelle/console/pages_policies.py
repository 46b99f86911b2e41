"""Compliance policies of tenants and keys: the shipped packs, every policy (the store's and the config
file's), a form to set one and a button to delete one.  Writes go through ``CompliancePolicies`` (the admin
API's checks) and then reload this instance's policies; other instances follow at their next poll."""

from __future__ import annotations

from passerelle.admin.compliance import CompliancePolicies, packs_view
from passerelle.admin.service import invalid
from passerelle.admin.validation import parse_overrides, split_list
from passerelle.console.html import Html, field, form, hidden, join, page, select, table, tag
from passerelle.console.http import Ctx, Response, html_response
from passerelle.console.pages_keys import changed

PATH = "/console/policies"
SCOPES = (("tenant", "tenant"), ("key", "key"))


def _policies(ctx: Ctx) -> CompliancePolicies:
    return CompliancePolicies(ctx.gw.store, ctx.gw.config, ctx.gw.audit, "console")


def _overrides(text: str) -> dict[str, str]:
    """"PHONE=mask, EMAIL=redact" (commas or new lines between pairs)."""
    try:
        return parse_overrides(text.replace("\n", ",").split(","))
    except ValueError as exc:
        raise invalid(f"overrides: {exc}") from None


def _packs(text: str) -> list[str] | None:
    """Blank: inherit the layer below's packs; "none": no pack (overrides only)."""
    if not text.strip():
        return None
    return [] if text.strip().lower() == "none" else list(split_list(text))


async def policies(ctx: Ctx, notice: Html | None = None, status: int = 200) -> Response:
    rows = []
    for view in await _policies(ctx).list():
        delete = (form(f"{PATH}/delete", hidden("scope", view["scope"]) + hidden("scope_id", view["scope_id"]),
                       ctx.csrf, button="Delete", class_="inline",
                       data_confirm=f"Delete the policy of {view['scope']} {view['scope_id']}?")
                  if view["source"] == "admin" else Html("config file"))
        packs = "inherited" if view["packs"] is None else ", ".join(view["packs"]) or "none"
        overrides = ", ".join(f"{t}={a}" for t, a in view["overrides"].items()) or "-"
        rows.append([view["scope"], tag("code", view["scope_id"]), packs, overrides, len(view["codewords"]),
                     view["updated_at"] or "-", delete])
    setter = form(PATH, select("Scope", "scope", SCOPES, ctx.arg("scope", "tenant"))
                  + field("Tenant or key id", "scope_id", ctx.arg("scope_id"), required="required")
                  + field("Packs", "packs", ctx.arg("packs"), placeholder="finance,gdpr (blank: inherit; none)")
                  + field("Overrides", "overrides", ctx.arg("overrides"), placeholder="PHONE=mask, EMAIL=redact")
                  + tag("label", Html("Codewords (one per line) ") + tag("textarea", "", name="codewords", rows=3)),
                  ctx.csrf, button="Set policy")
    shipped = [[p["name"], p["version"], p["route_label"] or "-", p["audit_retention_days_min"],
                join((tag("code", f"{t}={a}") for t, a in p["actions"].items() if a != "allow"), " ")]
               for p in packs_view()]
    body = ((notice or Html("")) + await _effective(ctx)
            + tag("p", "Policies layer: the config's defaults, then the tenant's, then the key's. A tenant or key the "
                       "config file names is changed in the file.")
            + table(["Scope", "Id", "Packs", "Overrides", "Codewords", "Updated", ""], rows, numeric=(4,),
                    empty="No tenant or key has a policy of its own.")
            + tag("h2", "Set a policy") + setter
            + tag("h2", "Shipped packs")
            + table(["Pack", "Version", "Route label", "Retention floor (days)", "Acts on"], shipped, numeric=(3,)))
    return html_response(page("Compliance policies", body, PATH, ctx.csrf), status)


async def _effective(ctx: Ctx) -> Html:
    """What applies to one key (``?key=``): its layers with their sources, then the actions of the merged policy."""
    key_id = ctx.query.get("key", "").strip()
    ask = form(PATH, field("Effective policy of key", "key", key_id, placeholder="key id"), None, method="get",
               button="Show")
    if not key_id:
        return ask
    view = await _policies(ctx).effective(key_id)
    layers = [[x["layer"], x["source"], "inherited" if x["packs"] is None else ", ".join(x["packs"]) or "none",
               ", ".join(f"{t}={a}" for t, a in x["overrides"].items()) or "-", x["codewords"]]
              for x in view["layers"]]
    actions = [[tag("code", entity), action] for entity, action in view["actions"].items()]
    summary = (f"Route label {view['route_label'] or '-'}, audit retention floor {view['audit_retention_days_min']} "
               f"days." if view["scanned"] else "Nothing is scanned for this key.")
    return (ask + tag("h2", f"Key {key_id} (tenant {view['tenant']})", id="effective")
            + table(["Layer", "Source", "Packs", "Overrides", "Codewords"], layers, numeric=(4,))
            + tag("p", summary) + table(["Entity type", "Action"], actions, empty="No entity type is acted on."))


async def put_policy(ctx: Ctx) -> Response:
    codewords = [line for line in ctx.arg("codewords").splitlines() if line.strip()]
    policy = await _policies(ctx).put(ctx.arg("scope"), ctx.arg("scope_id"), _packs(ctx.arg("packs")),
                                      _overrides(ctx.arg("overrides")), codewords)
    await changed(ctx)
    ctx.form = {}
    return await policies(ctx, tag("p", f"Policy of {policy.scope} {policy.scope_id} saved.", class_="notice"))


async def delete_policy(ctx: Ctx) -> Response:
    scope, scope_id = ctx.arg("scope"), ctx.arg("scope_id")
    await _policies(ctx).delete(scope, scope_id)
    await changed(ctx)
    ctx.form = {}
    return await policies(ctx, tag("p", f"Policy of {scope} {scope_id} deleted.", class_="notice"))
