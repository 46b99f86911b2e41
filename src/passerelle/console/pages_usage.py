"""The usage explorer: the ledger grouped and filtered by the store, paged, exported as CSV."""

from __future__ import annotations

from passerelle.admin.report_format import METRICS, MONEY, UsageReport, report_csv, row_dict
from passerelle.console.html import field, form, page, pager, select, table, tag, url
from passerelle.console.http import Ctx, Response, html_response
from passerelle.stores.records import REPORT_DIMENSIONS

PAGE = 100
_GROUPS = (("", "nothing (totals)"), *((d, d) for d in REPORT_DIMENSIONS))


def _params(ctx: Ctx) -> dict[str, str]:
    return {name: ctx.query.get(name, "") for name in ("by", "by2", "since", "until", "tenant")}


async def _report(ctx: Ctx, params: dict[str, str]) -> UsageReport:
    by = ",".join(d for d in (params["by"], params["by2"]) if d)
    return await ctx.admin.usage(by or None, params["since"] or None, params["until"] or None,
                                 params["tenant"] or None)


async def usage(ctx: Ctx) -> Response:
    params = _params(ctx)
    if not ctx.query:
        params.update(by="day", since="7d")
    report = await _report(ctx, params)
    offset = ctx.int_arg("offset", 0)
    shown = report.rows[offset:offset + PAGE]
    filters = form("/console/usage", select("Group by", "by", _GROUPS, params["by"])
                   + select("then by", "by2", _GROUPS, params["by2"])
                   + field("Since (7d, 2026-11-01…)", "since", params["since"])
                   + field("Until", "until", params["until"]) + field("Tenant", "tenant", params["tenant"]),
                   None, method="get", button="Show")
    headers = [h.replace("_", " ") for h in (*report.by, *METRICS, *MONEY)]
    numeric = range(len(report.by), len(headers))
    rows = [list(row_dict(r, report.by).values()) for r in shown]
    totals = row_dict(report.totals(), ())
    export = tag("a", "Download CSV", href=url("/console/usage.csv", params), class_="button", download="usage.csv")
    body = (filters + tag("p", export) + pager("/console/usage", params, offset, PAGE, len(report.rows), len(shown))
            + table(headers, [["" if v is None else v for v in row] for row in rows], numeric=tuple(numeric),
                    empty="No usage in this window.")
            + tag("h2", "Totals") + table([h.replace("_", " ") for h in totals], [list(totals.values())],
                                          numeric=tuple(range(len(totals)))))
    return html_response(page("Usage", body, "/console/usage", ctx.csrf))


async def usage_csv(ctx: Ctx) -> Response:
    report = await _report(ctx, _params(ctx))
    return Response(200, report_csv(report).encode(), "text/csv; charset=utf-8",
                    [("content-disposition", 'attachment; filename="usage.csv"')])
