"""The overview: traffic, errors, spend and latency over a window, top consumers, cache savings."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from passerelle.admin.report_format import usd
from passerelle.console.charts import bars
from passerelle.console.html import Html, form, join, page, select, table, tag
from passerelle.console.http import Ctx, Response, html_response
from passerelle.stores.records import LATENCY_BUCKETS_MS, PICO_PER_USD, ReportQuery, ReportRow

WINDOWS = (("1", "24 hours"), ("7", "7 days"), ("14", "14 days"), ("30", "30 days"), ("90", "90 days"))


def percentile(counts: list[int], fraction: float) -> str:
    """The bucket bound under which ``fraction`` of requests finished (histogram resolution)."""
    total = sum(counts)
    if total == 0:
        return "-"
    seen = 0
    for i, count in enumerate(counts):
        seen += count
        if seen >= fraction * total:
            if i < len(LATENCY_BUCKETS_MS):
                return f"≤ {LATENCY_BUCKETS_MS[i]:,} ms"
            return f"> {LATENCY_BUCKETS_MS[-1]:,} ms"
    return "-"


def day_labels(since: float, days: int) -> list[str]:
    start = datetime.fromtimestamp(since, UTC).date()
    return [(start + timedelta(days=i)).isoformat() for i in range(days + 1)]


def _top(rows: list[ReportRow], dim: str, n: int = 5) -> Html:
    best = sorted(rows, key=lambda r: (-r.requests, str(r.group.get(dim))))[:n]
    return table([dim.capitalize(), "Requests", "Errors", "Cost (USD)"],
                  [[r.group.get(dim) or "-", r.requests, r.errors, usd(r.cost_pico)] for r in best], numeric=(1, 2, 3))


async def overview(ctx: Ctx) -> Response:
    days = ctx.int_arg("days", 14, 1, 366)
    tenant = ctx.opt("tenant")
    since = time.time() - days * 86400
    store = ctx.gw.store
    daily = {r.group.get("day"): r for r in await store.report(ReportQuery(("day",), since, None, tenant))}
    labels = day_labels(since, days)
    rows = [daily.get(d) for d in labels]
    requests = [float(r.requests) if r else 0.0 for r in rows]
    errors = [float(r.errors) if r else 0.0 for r in rows]
    spend = [r.cost_pico / PICO_PER_USD if r else 0.0 for r in rows]
    latency = await store.latency_histogram(since, None, tenant)
    total = ReportRow({}, *[sum(getattr(r, f) for r in daily.values()) for f in (
        "requests", "errors", "cache_hits", "input_tokens", "output_tokens", "cache_write_tokens",
        "cache_read_tokens", "thinking_tokens", "cost_pico", "saved_pico")])
    cards = join(tag("div", Html(f"{label}<b>{value}</b>"), class_="card") for label, value in (
        ("Requests", f"{total.requests:,}"), ("Errors", f"{total.errors:,}"), ("Spend (USD)", usd(total.cost_pico)),
        ("p50 latency", percentile(latency, 0.5)), ("p95 latency", percentile(latency, 0.95)),
        ("p99 latency", percentile(latency, 0.99)), ("Cache hits", f"{total.cache_hits:,}"),
        ("Cache savings (USD)", usd(total.saved_pico))))
    filters = form("/console/", select("Window", "days", WINDOWS, str(days)), None, method="get", button="Show")
    charts = tag("div", join([bars("Requests per day", labels, requests), bars("Errors per day", labels, errors),
                              bars("Spend per day", labels, spend, " $"),
                              bars("Latency distribution (requests per bucket, ms)",
                                   [f"<{b}" for b in LATENCY_BUCKETS_MS] + ["more"], [float(c) for c in latency])]),
                 class_="grid")
    tops: list[Html] = []
    for dim in ("tenant", "model", "key"):
        found = await store.report(ReportQuery((dim,), since, None, tenant, top=5))
        tops.append(tag("section", tag("h2", f"Top {dim}s") + _top(found, dim)))
    body = filters + tag("div", cards, class_="cards") + charts + tag("div", join(tops), class_="grid")
    return html_response(page("Overview", body, "/console/", ctx.csrf))
