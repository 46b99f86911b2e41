"""The audit log (paged, with the chain's verification on demand) and compliance findings over time.

Both read the audit store's records in seq order, page by page, inside a time window (default: the
last day for the log, the last week for findings), so memory holds one page, not the chain."""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime

from passerelle.admin.service import invalid
from passerelle.admin.validation import parse_time
from passerelle.audit.base import RecordFilter
from passerelle.audit.chain import GENESIS, averify
from passerelle.console.charts import bars
from passerelle.console.html import Html, field, form, join, page, pager, table, tag
from passerelle.console.http import Ctx, Response, html_response
from passerelle.console.pages_overview import day_labels

PAGE = 50


def _window(ctx: Ctx, default_since: str) -> tuple[dict[str, str], RecordFilter]:
    params = {"since": ctx.query.get("since", default_since), "until": ctx.query.get("until", ""),
              "tenant": ctx.query.get("tenant", "")}
    now = time.time()
    try:
        since = parse_time("since", params["since"], now=now) if params["since"] else None
        until = parse_time("until", params["until"], now=now) if params["until"] else None
    except ValueError as exc:
        raise invalid(str(exc)) from None
    return params, RecordFilter(None if since is None else int(since * 1e6),
                                None if until is None else int(until * 1e6), params["tenant"] or None)


def _disabled(title: str, current: str, ctx: Ctx) -> Response:
    return html_response(page(title, tag("p", "Auditing is disabled in this gateway's configuration (audit section).",
                                         class_="notice"), current, ctx.csrf))


def _filters(action: str, params: dict[str, str]) -> Html:
    return form(action, field("Since", "since", params["since"]) + field("Until", "until", params["until"])
                + field("Tenant", "tenant", params["tenant"]), None, method="get", button="Show")


async def audit(ctx: Ctx, verdict: Html | None = None) -> Response:
    store = ctx.gw.audit.store
    if store is None:
        return _disabled("Audit log", "/console/audit", ctx)
    params, where = _window(ctx, "1d")
    offset = ctx.int_arg("offset", 0)
    rows: list[list[object]] = []
    async with store.snapshot() as view:
        index = 0
        async for r in view.records(where):
            if index >= offset + PAGE:
                break
            if index >= offset:
                findings = ", ".join(f"{f.get('type')}:{f.get('action')}x{f.get('count', 1)}" for f in r.findings)
                rows.append([r.seq, datetime.fromtimestamp(r.time_us / 1e6, UTC).isoformat(timespec="seconds"),
                             r.tenant_id, r.key_id, r.model, r.purpose or "-", r.decision, r.status, findings or "-",
                             tag("code", r.hash[:12])])
            index += 1
    check = form("/console/audit/verify", Html(""), ctx.csrf, button="Verify the whole chain")
    listing = table(["Seq", "Time (UTC)", "Tenant", "Key", "Model", "Purpose", "Decision", "Status", "Findings",
                     "Hash"], rows, numeric=(0, 7), empty="No audit record in this window.")
    body = (join([verdict or Html(""), check, _filters("/console/audit", params)])
            + pager("/console/audit", params, offset, PAGE, None, len(rows)) + listing)
    return html_response(page("Audit log", body, "/console/audit", ctx.csrf))


async def verify(ctx: Ctx) -> Response:
    store = ctx.gw.audit.store
    if store is None:
        return _disabled("Audit log", "/console/audit", ctx)
    async with store.snapshot() as view:
        result = await averify(view.records(), view.anchor or GENESIS)
    if result.ok:
        text = tag("span", "Chain intact", class_="ok") + Html(
            f": {result.records:,} records checked from seq {result.start.seq + 1} to {result.head.seq}.")
    else:
        b = result.broken
        detail = f": {b.kind} at seq {b.seq} ({b.detail})" if b is not None else ""
        text = tag("span", "Chain BROKEN", class_="bad") + Html("") + detail
    ctx.query = {}
    return await audit(ctx, tag("p", text, class_="notice", id="verdict"))


async def compliance(ctx: Ctx) -> Response:
    store = ctx.gw.audit.store
    if store is None:
        return _disabled("Compliance findings", "/console/compliance", ctx)
    params, where = _window(ctx, "7d")
    per_day: Counter[str] = Counter()
    per_kind: Counter[tuple[str, str, str]] = Counter()
    blocked = records = 0
    async with store.snapshot() as view:
        async for r in view.records(where):
            records += 1
            blocked += r.decision == "blocked"
            day = datetime.fromtimestamp(r.time_us / 1e6, UTC).date().isoformat()
            for f in r.findings:
                count = int(f.get("count", 1))
                per_day[day] += count
                per_kind[(str(f.get("type")), str(f.get("action")), str(f.get("direction", "")))] += count
    start = where.since_us / 1e6 if where.since_us is not None else time.time() - 7 * 86400
    labels = day_labels(start, max(1, int((time.time() - start) // 86400)))
    chart = bars("Findings per day", labels, [float(per_day.get(d, 0)) for d in labels])
    rows = [[t, a, d or "-", n] for (t, a, d), n in sorted(per_kind.items(), key=lambda kv: (-kv[1], kv[0]))]
    summary = tag("p", f"{records:,} audited requests in the window, {blocked:,} blocked, "
                       f"{sum(per_kind.values()):,} findings.")
    body = (_filters("/console/compliance", params) + summary + chart + tag("h2", "By entity type and action")
            + table(["Entity type", "Action", "Direction", "Findings"], rows, numeric=(3,),
                    empty="No finding in this window."))
    return html_response(page("Compliance findings", body, "/console/compliance", ctx.csrf))
