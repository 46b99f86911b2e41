"""Usage reports rendered: exact money, an aligned table with totals, JSON and CSV that add up."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal

from passerelle.admin.report_format import UsageReport, report_csv, report_json, report_table, text_table, usd
from passerelle.stores.records import ReportRow


def row(group: dict[str, str | None], requests: int, cost: int, saved: int = 0) -> ReportRow:
    return ReportRow(group=group, requests=requests, errors=requests // 10, cache_hits=1, input_tokens=1000 * requests,
                     output_tokens=10 * requests, cache_write_tokens=0, cache_read_tokens=5, thinking_tokens=0,
                     cost_pico=cost, saved_pico=saved)


REPORT = UsageReport(
    by=("tenant", "model"), since=1_790_000_000.0, until=None, tenant_id=None,
    rows=[row({"tenant": "acme", "model": "claude-sonnet-4-5"}, 120, 3_456_789_000_000),
          row({"tenant": "acme", "model": "gpt-4o"}, 7, 1, saved=2_500_000_000),
          row({"tenant": "beta", "model": None}, 1000, 12_000_000_000_000)])


def test_usd_is_exact() -> None:
    assert usd(0) == "0.00"
    assert usd(1) == "0.000000000001"
    assert usd(1_500_000_000) == "0.0015"
    assert usd(12_500_000_000_000) == "12.50"
    assert usd(-2_000_000_000_000) == "-2.00"
    assert usd(123_456_789_012_345_678) == "123456.789012345678"


def test_json_rows_and_totals() -> None:
    data = report_json(REPORT)
    assert data["by"] == ["tenant", "model"] and data["since"] == "2026-09-21T14:13:20Z" and data["until"] is None
    assert data["rows"][0] == {"tenant": "acme", "model": "claude-sonnet-4-5", "requests": 120, "errors": 12,
                               "cache_hits": 1, "input_tokens": 120_000, "output_tokens": 1200,
                               "cache_write_tokens": 0, "cache_read_tokens": 5, "thinking_tokens": 0,
                               "cost_usd": "3.456789", "saved_usd": "0.00"}
    assert data["rows"][2]["model"] is None
    totals = data["totals"]
    assert totals["requests"] == 1127 and totals["cost_usd"] == "15.456789000001" and totals["saved_usd"] == "0.0025"
    json.dumps(data)  # plain JSON types only


def test_csv_parses_and_adds_up_to_the_totals() -> None:
    lines = list(csv.DictReader(io.StringIO(report_csv(REPORT))))
    assert len(lines) == 3 and lines[2]["model"] == ""
    assert sum(int(line["requests"]) for line in lines) == REPORT.totals().requests
    assert sum(Decimal(line["cost_usd"]) for line in lines) == Decimal(REPORT.totals().cost_pico) / 10**12


def test_table_is_aligned_with_a_totals_row() -> None:
    text = report_table(REPORT)
    lines = text.splitlines()
    assert lines[0] == "usage from 2026-09-21T14:13:20Z to now"
    header, rule, *body = lines[1:]
    assert header.split()[:4] == ["tenant", "model", "requests", "errors"]
    assert body[-1].split()[0] == "TOTAL" and body[-1].split()[-2:] == ["15.456789000001", "0.0025"]
    assert set(body[-2]) == {"-", " "}  # the rule above the totals
    # Numbers are right-aligned: every line ends in the same column as the header.
    assert len({len(line) for line in [header, rule, *body]}) == 1
    assert "-" in body[2].split()[1]  # a missing dimension value shows as "-"


def test_empty_report_and_no_dimensions() -> None:
    empty = UsageReport(by=(), since=None, until=None, tenant_id="acme", rows=[])
    text = report_table(empty)
    assert text.splitlines()[0] == "usage from the beginning to now, tenant acme"
    assert text.splitlines()[-1].split()[:2] == ["0", "0"]
    assert report_json(empty)["totals"]["cost_usd"] == "0.00"
    assert report_csv(empty).splitlines() == [
        "requests,errors,cache_hits,input_tokens,output_tokens,cache_write_tokens,cache_read_tokens,"
        "thinking_tokens,cost_usd,saved_usd"]


def test_text_table_widths() -> None:
    assert text_table(["a", "n"], [["xyz", 5], ["q", 12345]], [False, True]).splitlines() == [
        "a        n", "---  -----", "xyz      5", "q    12345"]
