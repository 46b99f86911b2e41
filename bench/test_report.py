"""Smoke tests of the benchmark's pure functions (no process, no network): `pytest bench/test_report.py`."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

import bench.gateways
from bench import report
from bench.gateways import (
    OVERLAYS,
    deep_merge,
    passerelle_config,
    unavailable,
)
from bench.peer_litellm import LiteLLMInstall


def records(rate: float, latencies_ms: list[float], *, warmup: float = 0.0, statuses: list[int] | None = None,
            late_ms: float = 0.0) -> dict[str, Any]:
    """A load-generator output: request i scheduled at i/rate, answered after latencies_ms[i]."""
    n = len(latencies_ms)
    sched = [i / rate for i in range(n)]
    return {"mode": "open", "rate": rate, "warmup": warmup, "duration": n / rate - warmup, "errors": {},
            "sched": sched, "sent": [s + late_ms / 1000 for s in sched],
            "first": [s + lat / 2000 for s, lat in zip(sched, latencies_ms, strict=True)],
            "end": [s + lat / 1000 for s, lat in zip(sched, latencies_ms, strict=True)],
            "status": statuses or [200] * n, "nbytes": [100] * n}


def test_percentile_interpolates_like_numpy() -> None:
    assert report.percentile([], 0.5) is None
    assert report.percentile([3.0], 0.99) == 3.0
    assert report.percentile([4.0, 1.0, 3.0, 2.0], 0.5) == 2.5
    assert math.isclose(report.percentile(list(map(float, range(101))), 0.99) or 0, 99.0)
    assert report.percentiles([1.0, 2.0, 3.0])["max"] == 3.0


def test_summarize_measures_from_the_scheduled_time_and_skips_the_warmup() -> None:
    lat = [50.0] * 10 + [1.0] * 90  # the first 10 (the warm-up second) are slow and not measured
    stats = report.summarize(records(10.0, lat, warmup=1.0, late_ms=0.5))
    assert stats["requests"] == 90 and stats["ok"] == 90 and stats["errors"] == 0
    assert math.isclose(stats["latency_ms"]["p50"] or 0, 1.0)
    assert math.isclose(stats["service_ms"]["p50"] or 0, 0.5)  # from the actual send time
    assert math.isclose(stats["ttfb_ms"]["p50"] or 0, 0.5)
    assert math.isclose(stats["lateness_ms"]["p99"] or 0, 0.5) and not stats["generator_behind"]
    assert math.isclose(stats["achieved_rps"], 10.0, rel_tol=0.05)


def test_saturation_rules() -> None:
    ok = report.summarize(records(100.0, [2.0] * 500))
    assert report.saturation(ok) is None
    slow = report.summarize(records(100.0, [1500.0] * 500))
    assert "p99" in (report.saturation(slow) or "")
    failing = report.summarize(records(100.0, [2.0] * 500, statuses=[200] * 490 + [502] * 10))
    assert "errors 10/500" in (report.saturation(failing) or "")
    behind = dict(ok, achieved_rps=80.0)
    assert "achieved 80 < 95%" in (report.saturation(behind) or "")


def step(gateway: str, rate: float, p50: float, p99: float, *, saturated: str | None = None,
         scenario: str = "small", achieved: float | None = None) -> report.Step:
    lat = {"p50": p50, "p90": p99, "p99": p99, "max": p99}
    return {"gateway": gateway, "scenario": scenario, "offered_rps": rate, "requests": 100, "ok": 100, "errors": 0,
            "achieved_rps": rate if achieved is None else achieved, "latency_ms": lat, "ttfb_ms": lat,
            "saturated": saturated, "rss_peak_mb": 100.0, "lateness_ms": {"p99": 0.1}}


def test_added_latency_sustained_throughput_and_verdicts() -> None:
    steps = [step("direct", 200, 1.0, 2.0), step("direct", 1000, 1.0, 2.0),
             step("passerelle", 200, 1.5, 4.0), step("passerelle", 1000, 900.0, 1500.0, saturated="p99"),
             step("litellm", 200, 10.0, 30.0, saturated="achieved", achieved=50.0),
             step("passthrough", 200, 1.2, 2.5), step("passthrough", 1000, 1.3, 3.0)]
    report.attach_added(steps)
    assert steps[0]["added_ms"] is None
    assert steps[2]["added_ms"] == {"p50": 0.5, "p90": 2.0, "p99": 2.0}
    summ = report.summary(steps)
    assert summ["passerelle"]["small"]["sustained_rps"] == 200
    assert summ["passerelle"]["small"]["saturated_at_rps"] == 1000
    assert summ["passthrough"]["small"]["lower_bound"] is True
    assert summ["litellm"]["small"]["sustained_rps"] is None
    statuses: dict[str, dict[str, str]] = {g: {"status": "ok"} for g in report.GATEWAY_ORDER}
    statuses["passerelle-full"] = {"status": "skipped", "message": "skipped: not in this test"}
    result = {"steps": steps, "summary": summ, "gateways": statuses,
              "closed": [{"gateway": "litellm", "concurrency": 64, "achieved_rps": 15.0, "errors": 0,
                          "latency_ms": {"p50": 400.0, "p99": 900.0}}]}
    verdicts = {(v["target"].split(" (")[0], v["gateway"]): v for v in report.verdicts(result)}
    first = verdicts[("added p50 <= 1 ms and p99 <= 3 ms at 200 RPS, small, non-streaming", "passerelle")]
    assert first["status"] == "PASS", first
    assert verdicts[("sustained throughput >= 10x LiteLLM", "passerelle")]["status"] == "PASS"  # 200 vs 15 closed
    # passerelle: 200 to 1000 RPS; the pass-through never saturated: 1000 or more. The ratio is 0 to 1x: unknown
    through = verdicts[("sustained throughput >= 40% of the pass-through", "passerelle")]
    assert through["status"] == "INCONCLUSIVE", through
    assert "ratio >= 0.00x" not in through["detail"] and "200-1000 RPS" in through["detail"]
    soak = verdicts[("memory flat over a 10-minute soak", "passerelle")]
    assert soak["status"] == "NOT RUN"
    markdown = report.render_markdown({**result, "verdicts": list(verdicts.values()), "notes": ["a note"]})
    assert "| passerelle | 200 | 200 | 0/100 | 1.50 | 4.00 | 4.00 | 0.50 | 2.00 | 2.00 |" in markdown
    assert "**PASS**" in markdown and "- a note" in markdown and "## Scenario `small`" in markdown


def test_throughput_verdict_fails_when_certain() -> None:
    steps = [step("direct", 200, 1.0, 2.0), step("direct", 400, 1.0, 2.0),
             step("passerelle", 200, 1.5, 2.5), step("passerelle", 400, 900.0, 1500.0, saturated="p99"),
             step("passthrough", 200, 1.2, 2.2), step("passthrough", 400, 1.2, 2.2)]
    result = {"steps": steps, "summary": report.summary(steps),
              "closed": [{"gateway": "passthrough", "concurrency": 64, "achieved_rps": 2000.0}],
              "gateways": {g: {"status": "ok"} for g in ("direct", "passerelle", "passthrough")}}
    statuses = {v["target"]: v for v in report.verdicts(result) if v["gateway"] == "passerelle"}
    verdict = statuses["sustained throughput >= 40% of the pass-through (small)"]
    assert verdict["status"] == "FAIL", verdict  # at most 400 against 2000: 20%


def test_throughput_verdict_is_inconclusive_when_neither_saturated() -> None:
    steps = [step("direct", 500, 1.0, 2.0), step("passerelle", 500, 1.5, 2.5), step("passthrough", 500, 1.2, 2.2)]
    report.attach_added(steps)
    result = {"steps": steps, "summary": report.summary(steps), "closed": [],
              "gateways": {g: {"status": "ok"} for g in ("direct", "passerelle", "passthrough")}}
    statuses = {v["target"]: v["status"] for v in report.verdicts(result) if v["gateway"] == "passerelle"}
    assert statuses["sustained throughput >= 40% of the pass-through (small)"] == "INCONCLUSIVE"
    assert statuses["sustained throughput >= 10x LiteLLM (small)"] == "NOT RUN"


def test_max_open_and_soak_growth() -> None:
    assert report.max_open([0.0, 0.1, 0.2, 5.0], [1.0, 1.0, None, 6.0]) == 3
    assert report.max_open([0.0, 1.0], [1.0, 2.0]) == 1  # an end and a start at the same instant
    flat = [(float(t), 100.0) for t in range(0, 600, 5)]
    assert report.soak_growth(flat, 600)["growth"] == 0.0
    growing = [(float(t), 100.0 + t / 10) for t in range(0, 600, 5)]
    growth = report.soak_growth(growing, 600)["growth"] or 0
    assert 0.3 < growth < 0.5
    assert report.soak_growth([], 60)["growth"] is None


def test_full_features_hook() -> None:
    assert unavailable("passerelle-full", None) is None
    assert unavailable("passerelle", None) is None
    assert unavailable("litellm", None) == "skipped: not installed"
    failed = LiteLLMInstall(False, None, "pip install 'litellm[proxy]' failed (exit 1):\nNo matching distribution")
    assert "No matching distribution" in (unavailable("litellm", failed) or "")
    merged = deep_merge({"a": {"b": 1, "c": 2}, "k": [1]}, {"a": {"c": 3}, "m": {"x": 1}})
    assert merged == {"a": {"b": 1, "c": 3}, "k": [1], "m": {"x": 1}}


def test_the_relay_needs_socat(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bench.gateways.shutil, "which", lambda name: None)
    assert unavailable("relay", None) == "skipped: socat is not installed (apt install socat)"
    monkeypatch.setattr(bench.gateways.shutil, "which", lambda name: f"/usr/bin/{name}")
    assert unavailable("relay", None) is None
    assert "relay" in report.PAIRED_GATEWAYS and "relay" not in report.DEFAULT_GATEWAYS


def test_each_issue_has_its_own_configuration(tmp_path: Path) -> None:
    """Cost control is measured with budgets and limits but no compliance, compliance with its pack but no budgets,
    and "full" with both; every one of them gets the targets' verdicts."""
    budgets, finance, full = (passerelle_config(9, 2, tmp_path, overlay=OVERLAYS[name])
                              for name in ("passerelle-budgets", "passerelle-finance", "passerelle-full"))
    assert budgets["metering"]["budgets"] and budgets["metering"]["rate_limits"] and "compliance" not in budgets
    assert finance["compliance"] == {"packs": ["finance"]} and "metering" not in finance
    assert full["metering"] == budgets["metering"] and full["compliance"] == finance["compliance"]
    steps = [step(gw, 200, 1.0 if gw == "direct" else 1.5, 2.0) for gw in report.GATEWAY_ORDER]
    checked = {v["gateway"] for v in report.verdicts({"steps": steps, "gateways": {}})}
    assert set(report.TARGET_GATEWAYS) <= checked


def test_no_added_latency_over_a_saturated_floor() -> None:
    steps = [step("direct", 2000, 800.0, 1500.0, saturated="p99"), step("passerelle", 2000, 900.0, 1600.0)]
    report.attach_added(steps)
    assert steps[1]["added_ms"] is None and steps[1]["baseline_saturated"] is True
    notes = report.notes({"steps": steps})
    assert any("Direct itself saturated" in n for n in notes)


def test_paired_rounds_decide_the_latency_targets_by_their_median() -> None:
    def rounded(gateway: str, scenario: str, number: int, p50: float, p99: float, ttfb: float = 0.0) -> report.Step:
        s = step(gateway, 200, p50, p99)
        s.update({"scenario": scenario, "round": number, "ttfb_ms": {"p50": ttfb, "p90": ttfb, "p99": ttfb}})
        return s

    rounds = []
    # One disturbed round (round 2: passerelle-full +2.5 ms) among five: the median ignores it.
    for number, (full, direct_ttfb, full_ttfb) in enumerate([(1.6, 21.0, 21.8), (1.7, 21.2, 21.9), (4.0, 21.1, 24.0),
                                                               (1.5, 21.0, 21.6), (1.8, 21.3, 22.1)]):
        rounds += [rounded("direct", "small", number, 1.0, 2.0), rounded("passerelle-full", "small", number, full, 3.5),
                   rounded("passthrough", "small", number, 1.9, 3.0), rounded("relay", "small", number, 1.2, 2.5),
                   rounded("direct", "stream", number, 40.0, 41.0, direct_ttfb),
                   rounded("passerelle-full", "stream", number, 41.0, 43.0, full_ttfb)]
    report.attach_added_by_round(rounds)
    paired = report.paired_summary(rounds)
    small = paired["small"]["passerelle-full"]
    assert small["rounds"] == 5 and math.isclose(small["added_p50"]["median"], 0.7)
    assert math.isclose(small["added_p50"]["max"], 3.0) and math.isclose(small["added_p99"]["median"], 1.5)
    assert math.isclose(paired["stream"]["passerelle-full"]["ttfb_added_p50"]["median"], 0.8)
    # The sweep step (a single, unlucky one) says FAIL; the paired rounds decide.
    steps = [step("direct", 200, 1.0, 2.0), step("passerelle-full", 200, 2.3, 4.0)]
    report.attach_added(steps)
    result = {"steps": steps, "summary": report.summary(steps), "paired": paired,
              "gateways": {g: {"status": "ok"} for g in report.GATEWAY_ORDER}}
    verdicts = {(v["target"].split(" (")[0], v["gateway"]): v for v in report.verdicts(result)}
    small_verdict = verdicts[("added p50 <= 1 ms and p99 <= 3 ms at 200 RPS, small, non-streaming", "passerelle-full")]
    assert small_verdict["status"] == "PASS", small_verdict
    assert "median of 5 paired rounds" in small_verdict["detail"] and "sweep step: added p50 1.30" in \
        small_verdict["detail"]
    assert "the pass-through in the same rounds: added p50 0.90 (0.90 to 0.90) ms" in small_verdict["detail"]
    assert "the relay (the hop alone) in the same rounds: added p50 0.20 (0.20 to 0.20) ms" in small_verdict["detail"]
    first_byte = verdicts[("streaming first-byte overhead p50 <= 1 ms at 200 RPS", "passerelle-full")]
    assert first_byte["status"] == "PASS" and "0.80 (0.60 to 2.90)" in first_byte["detail"], first_byte
    # A gateway that is slow in most rounds fails whatever its best round.
    for s in rounds:
        if s["gateway"] == "passerelle-full" and s["scenario"] == "small" and s["round"] != 3:
            s["latency_ms"] = {"p50": 2.5, "p90": 3.0, "p99": 3.5}
    report.attach_added_by_round(rounds)
    result["paired"] = report.paired_summary(rounds)
    verdicts = {(v["target"].split(" (")[0], v["gateway"]): v for v in report.verdicts(result)}
    assert verdicts[("added p50 <= 1 ms and p99 <= 3 ms at 200 RPS, small, non-streaming", "passerelle-full")][
        "status"] == "FAIL"
    markdown = report.render_markdown({**result, "verdicts": list(verdicts.values())})
    assert "## Paired rounds at 200 RPS" in markdown and "| stream | passerelle-full | 5 |" in markdown


def test_each_gateway_is_measured_beside_its_own_direct_step() -> None:
    from bench.run import paired_schedule

    schedule = paired_schedule(["passerelle", "passerelle-full"], 2)
    assert schedule == [(0, "passerelle", "direct"), (0, "passerelle", "passerelle"),
                        (0, "passerelle-full", "direct"), (0, "passerelle-full", "passerelle-full"),
                        (1, "passerelle-full", "passerelle-full"), (1, "passerelle-full", "direct"),
                        (1, "passerelle", "passerelle"), (1, "passerelle", "direct")]

    def measured(gateway: str, number: int, pair: str, p50: float) -> report.Step:
        s = step(gateway, 200, p50, p50 + 1.0)
        s.update({"scenario": "small", "round": number, "pair": pair})
        return s

    # The machine slows down during round 0: direct beside passerelle-full reads 1.6 ms, beside passerelle 1.0.
    rounds = [measured("direct", 0, "passerelle", 1.0), measured("passerelle", 0, "passerelle", 1.5),
              measured("direct", 0, "passerelle-full", 1.6), measured("passerelle-full", 0, "passerelle-full", 2.3)]
    report.attach_added_by_round(rounds)
    added = {s["gateway"]: s["added_ms"]["p50"] for s in rounds if s["gateway"] != "direct"}
    assert math.isclose(added["passerelle"], 0.5) and math.isclose(added["passerelle-full"], 0.7)
    paired = report.paired_summary(rounds)
    assert paired["small"]["passerelle-full"]["direct_p50"]["values"] == [1.0, 1.6]  # every direct step of the run
    text = report.render_markdown({"steps": [], "summary": [], "paired": paired, "rounds": rounds, "verdicts": [],
                                   "gateways": {}})
    assert "right beside a measurement of direct" in text
