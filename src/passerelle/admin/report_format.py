"""Usage reports as people and programs read them: an aligned text table with a totals row,
JSON, CSV.  Money is exact: pico-dollars rendered as decimal USD strings, never floats."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from passerelle.stores.records import PICO_PER_USD, ReportRow

METRICS = ("requests", "errors", "cache_hits", "input_tokens", "output_tokens", "cache_write_tokens",
           "cache_read_tokens", "thinking_tokens")
MONEY = ("cost_usd", "saved_usd")


def usd(pico: int) -> str:
    """Exact dollars with at least two decimals: 0 -> "0.00", 1_500_000_000 -> "0.0015"."""
    whole, frac = divmod(abs(pico), PICO_PER_USD)
    digits = f"{frac:012d}".rstrip("0").ljust(2, "0")
    return f"{'-' if pico < 0 else ''}{whole}.{digits}"


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class UsageReport:
    by: tuple[str, ...]
    since: float | None
    until: float | None
    tenant_id: str | None
    rows: list[ReportRow]

    def totals(self) -> ReportRow:
        sums = {name: sum(getattr(row, name) for row in self.rows)
                for name in (*METRICS, "cost_pico", "saved_pico")}
        return ReportRow(group={}, **sums)


def row_dict(row: ReportRow, by: Sequence[str]) -> dict[str, Any]:
    """One flat object: the group's dimensions, then the counts, then the money."""
    out: dict[str, Any] = {dim: row.group.get(dim) for dim in by}
    out.update({name: getattr(row, name) for name in METRICS})
    out["cost_usd"] = usd(row.cost_pico)
    out["saved_usd"] = usd(row.saved_pico)
    return out


def report_json(report: UsageReport) -> dict[str, Any]:
    return {
        "by": list(report.by),
        "since": iso(report.since),
        "until": iso(report.until),
        "tenant": report.tenant_id,
        "rows": [row_dict(row, report.by) for row in report.rows],
        "totals": row_dict(report.totals(), ()),
    }


def report_csv(report: UsageReport) -> str:
    """One line per group and no totals line, so summing a column gives the total."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*report.by, *METRICS, *MONEY])
    for row in report.rows:
        writer.writerow(["" if v is None else v for v in row_dict(row, report.by).values()])
    return out.getvalue()


def text_table(headers: Sequence[str], rows: Sequence[Sequence[object]], numeric: Sequence[bool] | None = None,
               footer: Sequence[object] | None = None) -> str:
    """Columns padded to their widest cell; numeric columns right-aligned; an optional footer under a rule."""
    cells = [[_cell(v) for v in row] for row in rows]
    foot = [_cell(v) for v in footer] if footer is not None else None
    widths = [len(h) for h in headers]
    for row in [*cells, *([foot] if foot else [])]:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    right = list(numeric) if numeric is not None else [False] * len(headers)

    def line(row: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) if r else c.ljust(w) for c, w, r in zip(row, widths, right, strict=True)).rstrip()

    lines = [line(list(headers)), line(["-" * w for w in widths]), *map(line, cells)]
    if foot is not None:
        lines += [line(["-" * w for w in widths]), line(foot)]
    return "\n".join(lines)


def _cell(value: object) -> str:
    return "-" if value is None else str(value)


def report_table(report: UsageReport) -> str:
    headers = [*report.by, "requests", "errors", "cache_hits", "input", "output", "cache_write", "cache_read",
               "thinking", "cost_usd", "saved_usd"]
    numeric = [False] * len(report.by) + [True] * (len(headers) - len(report.by))
    rows = [list(row_dict(row, report.by).values()) for row in report.rows]
    total = list(row_dict(report.totals(), ()).values())
    label = ["TOTAL", *[""] * (len(report.by) - 1)] if report.by else []
    window = f"usage from {iso(report.since) or 'the beginning'} to {iso(report.until) or 'now'}"
    if report.tenant_id is not None:
        window += f", tenant {report.tenant_id}"
    if not report.by:
        return f"{window}\n{text_table(headers, [total], numeric)}"
    return f"{window}\n{text_table(headers, rows, numeric, footer=[*label, *total])}"
