"""Pure functions of the benchmark: statistics of one step, saturation, added latency, targets, Markdown.

Nothing here starts a process or reads a clock, so bench/test_report.py checks it in well under a second.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

GATEWAY_ORDER = ("direct", "relay", "passthrough", "passerelle", "passerelle-granian", "passerelle-python",
                 "passerelle-budgets", "passerelle-finance", "passerelle-full", "passerelle-scaleout",
                 "passerelle-anthropic", "litellm")
# relay (socat: the floor of any extra hop), passerelle-granian (the same gateway on the other HTTP server),
# passerelle-python (without its compiled twins) and passerelle-anthropic (an Anthropic upstream) run only when asked.
ON_REQUEST = ("relay", "passerelle-granian", "passerelle-python", "passerelle-anthropic")
DEFAULT_GATEWAYS = tuple(g for g in GATEWAY_ORDER if g not in ON_REQUEST)
SCENARIO_ORDER = ("small", "stream", "large", "concurrent")
PERCENTILES = (("p50", 0.50), ("p90", 0.90), ("p99", 0.99))

# A step saturates the gateway when any of these holds.
MIN_ACHIEVED_RATIO = 0.95  # achieved throughput below 95% of the offered rate
MAX_ERROR_RATIO = 0.01  # more than 1% of the requests failed
MAX_P99_MS = 1000.0  # p99 latency above one second
# The generator is "behind schedule" when its p99 send delay exceeds this: latencies then include its own lag.
GENERATOR_LATE_P99_MS = 5.0

# The targets (on a 2-core machine).
TARGET_RATE = 200.0
TARGET_ADDED_P50_MS = 1.0
TARGET_ADDED_P99_MS = 3.0
TARGET_X_LITELLM = 10.0
TARGET_FRACTION_PASSTHROUGH = 0.40
TARGET_TTFB_ADDED_P50_MS = 1.0
TARGET_CONCURRENT_STREAMS = 1000
TARGET_CONCURRENT_RSS_MB = 200.0
TARGET_SOAK_MINUTES = 10.0
TARGET_SOAK_GROWTH = 0.10

# The latency targets are measured again in paired rounds (bench/run.py: Runner.paired) for these.
PAIRED_SCENARIOS = ("small", "stream")
PAIRED_GATEWAYS = ("relay", "passthrough", "passerelle", "passerelle-python", "passerelle-budgets",
                   "passerelle-finance", "passerelle-full", "passerelle-scaleout", "passerelle-anthropic")
# The configurations every target is checked for: the defaults, cost control's (issue 4: "with metering and budgets
# on"), compliance's (issue 5: "with the finance pack on"), both, and both on the scale-out backend.
TARGET_GATEWAYS = ("passerelle", "passerelle-budgets", "passerelle-finance", "passerelle-full", "passerelle-scaleout")
# Quoted beside each latency verdict when they ran in the same paired rounds.
_FLOORS = (("passthrough", "the pass-through"), ("relay", "the relay (the hop alone)"))

Step = dict[str, Any]


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default) of ``values`` (any order)."""
    if not values:
        return None
    data = sorted(values)
    pos = (len(data) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def percentiles(values: Sequence[float]) -> dict[str, float | None]:
    data = sorted(values)
    out = {name: percentile(data, q) for name, q in PERCENTILES}
    out["max"] = data[-1] if data else None
    return out


def _num(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number


def summarize(records: Mapping[str, Any]) -> Step:
    """Statistics of one load-generator run (its JSON output), times in milliseconds.

    Only requests scheduled after the warm-up are measured.  Latencies run from the *scheduled*
    time.  Achieved throughput counts the successful completions that fell inside the measured
    window (whatever their schedule) divided by its length: at a steady state it equals the offered
    rate, past saturation it is what the gateway actually delivered.
    """
    warmup = float(records["warmup"])
    duration = float(records["duration"])
    sched, sent, first, end = records["sched"], records["sent"], records["first"], records["end"]
    status, nbytes = records["status"], records["nbytes"]
    burst = records.get("mode") == "open" and not records.get("rate")
    latency: list[float] = []
    ttfb: list[float] = []
    service: list[float] = []
    lateness: list[float] = []
    measured = ok = 0
    ok_in_window = 0
    received = 0
    for i in range(len(status)):
        s, e = _num(sched[i]), _num(end[i])
        good = 200 <= status[i] < 400
        if good and e is not None and warmup <= e <= warmup + duration:
            ok_in_window += 1
        if s is None or (s < warmup and not burst):
            continue
        measured += 1
        t_sent, t_first = _num(sent[i]), _num(first[i])
        if t_sent is not None:
            lateness.append((t_sent - s) * 1000)
        if not good or e is None:
            continue
        ok += 1
        received += int(nbytes[i])
        latency.append((e - s) * 1000)
        if t_sent is not None:
            service.append((e - t_sent) * 1000)
        if t_first is not None:
            ttfb.append((t_first - s) * 1000)
    late = percentiles(lateness)
    rate = _num(records.get("rate"))
    if records.get("mode") == "closed" or burst:
        span = max((_num(x) or 0.0) for x in end) if len(end) else 0.0
        achieved = ok / max(span - (0.0 if burst else warmup), 1e-9) if ok else 0.0
    else:
        achieved = ok_in_window / duration if duration > 0 else 0.0
    return {
        "offered_rps": rate if not burst else None,
        "requests": measured,
        "ok": ok,
        "errors": measured - ok,
        "error_kinds": dict(records.get("errors", {})),
        "achieved_rps": None if burst else achieved,
        "latency_ms": percentiles(latency),
        "ttfb_ms": percentiles(ttfb),
        "service_ms": percentiles(service),
        "lateness_ms": late,
        # A burst sends everything at t0 on purpose: its send delays are not a missed schedule.
        "generator_behind": not burst and (late["p99"] or 0.0) > GENERATOR_LATE_P99_MS,
        "bytes_per_response": received / ok if ok else None,
    }


def max_open(sent: Sequence[Any], end: Sequence[Any]) -> int:
    """Most requests open at the same time (sent, not yet ended): were the streams really concurrent?"""
    events: list[tuple[float, int]] = []
    for s, e in zip(sent, end, strict=True):
        t_sent, t_end = _num(s), _num(e)
        if t_sent is None:
            continue
        events.append((t_sent, 1))
        events.append((t_end if t_end is not None else math.inf, -1))
    events.sort(key=lambda ev: (ev[0], ev[1]))  # an end before a start at the same instant
    best = current = 0
    for _, delta in events:
        current += delta
        best = max(best, current)
    return best


def soak_growth(series: Sequence[tuple[float, float]], seconds: float) -> dict[str, float | None]:
    """Memory growth over a soak from (elapsed seconds, RSS MB) samples.

    The first 10% of the soak (at most a minute) is warm-up: pools fill, caches warm.  The baseline is
    the median of the next 10% of the samples' time, the final value the median of the last 10%;
    growth = final / baseline - 1.
    """
    if not series:
        return {"baseline_mb": None, "final_mb": None, "growth": None}
    warm = min(0.1 * seconds, 60.0)
    window = max(0.1 * seconds, 1e-9)
    base = [mb for t, mb in series if warm <= t <= warm + window] or [series[0][1]]
    last_t = series[-1][0]
    final = [mb for t, mb in series if t >= last_t - window] or [series[-1][1]]
    baseline, end = percentile(base, 0.5), percentile(final, 0.5)
    growth = end / baseline - 1 if baseline and end is not None else None
    return {"baseline_mb": baseline, "final_mb": end, "growth": growth}


def saturation(step: Step) -> str | None:
    """Why the gateway is saturated at this step, or None when it kept up."""
    reasons = []
    offered = step.get("offered_rps")
    if offered and step["achieved_rps"] < MIN_ACHIEVED_RATIO * offered:
        reasons.append(f"achieved {step['achieved_rps']:.0f} < 95% of {offered:.0f} RPS")
    if step["requests"] and step["errors"] > MAX_ERROR_RATIO * step["requests"]:
        reasons.append(f"errors {step['errors']}/{step['requests']} > 1%")
    p99 = step["latency_ms"].get("p99")
    if p99 is None or p99 > MAX_P99_MS:
        reasons.append("no successful request" if p99 is None else f"p99 {p99:.0f} ms > 1 s")
    return "; ".join(reasons) or None


def _diff(a: Mapping[str, float | None], b: Mapping[str, float | None]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for name, _ in PERCENTILES:
        x, y = a.get(name), b.get(name)
        out[name] = None if x is None or y is None else x - y
    return out


def attach_added(steps: list[Step]) -> None:
    """Added latency = the gateway's percentile minus direct's, same scenario and rate."""
    direct = {(s["scenario"], s.get("offered_rps")): s for s in steps if s["gateway"] == "direct"}
    for step in steps:
        base = direct.get((step["scenario"], step.get("offered_rps")))
        if base is not None and base.get("saturated") and step["gateway"] != "direct":
            step["baseline_saturated"] = True  # no floor to subtract: direct did not keep up either
            base = None
        if step["gateway"] == "direct" or base is None:
            step["added_ms"] = None
            step["ttfb_added_ms"] = None
            continue
        step["added_ms"] = _diff(step["latency_ms"], base["latency_ms"])
        step["ttfb_added_ms"] = _diff(step["ttfb_ms"], base["ttfb_ms"])


def attach_added_by_round(rounds: list[Step]) -> None:
    """Added latency of each paired round: the gateway's percentile minus that of the direct step measured beside
    it (its ``pair``), or, in runs from before pairs, of the round's one direct step."""
    direct = {(s["scenario"], s["round"], s.get("pair")): s for s in rounds if s["gateway"] == "direct"}
    for step in rounds:
        base = direct.get((step["scenario"], step["round"], step["gateway"])) or \
            direct.get((step["scenario"], step["round"], None))
        if step["gateway"] == "direct" or base is None:
            step["added_ms"] = step["ttfb_added_ms"] = None
            continue
        step["added_ms"] = _diff(step["latency_ms"], base["latency_ms"])
        step["ttfb_added_ms"] = _diff(step["ttfb_ms"], base["ttfb_ms"])


def _spread(values: Sequence[float | None]) -> dict[str, Any] | None:
    data = [v for v in values if v is not None]
    if not data:
        return None
    return {"median": percentile(data, 0.5), "min": min(data), "max": max(data), "values": list(values)}


def paired_summary(rounds: list[Step]) -> dict[str, dict[str, dict[str, Any]]]:
    """Per scenario and gateway: the median over the rounds of each round's added p50 and p99 (and first byte
    for streams), with the lowest and highest round: robust to one disturbed round, and the spread shows the
    run's noise."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for step in rounds:
        if step["gateway"] == "direct" or step.get("added_ms") is None:
            continue
        entry = out.setdefault(step["scenario"], {}).setdefault(step["gateway"], {"steps": []})
        entry["steps"].append(step)
    for scenario, by_gateway in out.items():
        for entry in by_gateway.values():
            mine = entry.pop("steps")
            direct = [s for s in rounds if s["gateway"] == "direct" and s["scenario"] == scenario]
            entry.update({
                "rounds": len(mine),
                "added_p50": _spread([s["added_ms"]["p50"] for s in mine]),
                "added_p99": _spread([s["added_ms"]["p99"] for s in mine]),
                "ttfb_added_p50": _spread([s["ttfb_added_ms"]["p50"] for s in mine]),
                "direct_p50": _spread([s["latency_ms"]["p50"] for s in direct]),
                "direct_ttfb_p50": _spread([s["ttfb_ms"]["p50"] for s in direct]),
                "errors": sum(s["errors"] for s in mine),
                "generator_behind_rounds": sum(1 for s in mine if s.get("generator_behind")),
            })
    return out


def _median_text(spread: Mapping[str, Any] | None) -> str:
    if not spread:
        return "n/a"
    return f"{fmt(spread['median'])} ({fmt(spread['min'])} to {fmt(spread['max'])})"


def sustained(steps: Iterable[Step]) -> dict[str, Any]:
    """Highest achieved throughput before saturation, for one gateway and scenario (open loop)."""
    ordered = sorted((s for s in steps if s.get("offered_rps")), key=lambda s: s["offered_rps"])
    best: float | None = None
    saturated_at: float | None = None
    reason: str | None = None
    for step in ordered:
        if step.get("saturated"):
            saturated_at, reason = step["offered_rps"], step["saturated"]
            break
        # A short step can finish the warm-up's backlog inside its window: never claim more than offered.
        best = max(best or 0.0, min(step["achieved_rps"], step["offered_rps"]))
    top = ordered[-1]["offered_rps"] if ordered else None
    return {"sustained_rps": best, "saturated_at_rps": saturated_at, "reason": reason,
            # Never saturated: the true capacity is higher than the sweep went.
            "lower_bound": saturated_at is None, "max_offered_rps": top}


def summary(steps: list[Step]) -> dict[str, dict[str, dict[str, Any]]]:
    out: dict[str, dict[str, dict[str, Any]]] = {}
    # scenario -> lowest rate at which direct saturated: the sweeps of the other gateways stop below it
    floor: dict[str, float] = {}
    for s in steps:
        if s["gateway"] == "direct" and s.get("saturated") and s.get("offered_rps"):
            floor[s["scenario"]] = min(floor.get(s["scenario"], math.inf), s["offered_rps"])
    for gateway in {s["gateway"] for s in steps}:
        for scenario in {s["scenario"] for s in steps if s["gateway"] == gateway}:
            mine = [s for s in steps if s["gateway"] == gateway and s["scenario"] == scenario]
            if any(s.get("offered_rps") for s in mine):
                info = sustained(mine)
                if gateway != "direct" and info["lower_bound"] and scenario in floor:
                    info["reason"] = f"sweep stopped below {floor[scenario]:g} RPS, where direct saturated"
                out.setdefault(gateway, {})[scenario] = info
    return out


def find_step(steps: Iterable[Step], gateway: str, scenario: str, rate: float | None) -> Step | None:
    for step in steps:
        if step["gateway"] == gateway and step["scenario"] == scenario and step.get("offered_rps") == rate:
            return step
    return None


def fmt(value: float | None, digits: int = 2, unit: str = "") -> str:
    return "n/a" if value is None else f"{value:.{digits}f}{unit}"


def _verdict(target: str, gateway: str, status: str, detail: str) -> dict[str, str]:
    return {"target": target, "gateway": gateway, "status": status, "detail": detail}


def _capacity(result: Mapping[str, Any], gateway: str) -> tuple[float, float, str] | None:
    """What this run knows of a gateway's capacity on small requests: an interval (low, high) in RPS.

    Open loop: it sustained ``low`` and saturated at ``high``.  When the sweep never saturated it (or it
    sustained nothing), the closed-loop burst gives a point estimate if there was one."""
    info = result.get("summary", {}).get(gateway, {}).get("small")
    closed = {c["gateway"]: c for c in result.get("closed", [])}.get(gateway)
    if info and info["sustained_rps"] and info["saturated_at_rps"] is not None:
        return info["sustained_rps"], info["saturated_at_rps"], "open loop"
    if closed and closed.get("achieved_rps"):
        value = max(closed["achieved_rps"], (info or {}).get("sustained_rps") or 0.0)
        return value, value, f"closed loop, {closed['concurrency']} connections"
    if info:
        high = info["saturated_at_rps"] if info["saturated_at_rps"] is not None else math.inf
        return info["sustained_rps"] or 0.0, high, "open loop" + (", never saturated" if high == math.inf else "")
    return None


def _span(low: float, high: float, unit: str = " RPS", digits: int = 0) -> str:
    if high == math.inf:
        return f">= {low:.{digits}f}{unit}"
    if math.isclose(low, high):
        return f"{low:.{digits}f}{unit}"
    return f"{low:.{digits}f}-{high:.{digits}f}{unit}"


def verdicts(result: Mapping[str, Any]) -> list[dict[str, str]]:
    """Check every target of the issue against what this run measured."""
    steps: list[Step] = result.get("steps", [])
    gateways: Mapping[str, Any] = result.get("gateways", {})
    out: list[dict[str, str]] = []
    measured = {s["gateway"] for s in steps}
    ran = [g for g in TARGET_GATEWAYS if g in measured]
    for gw in ran or ["passerelle"]:
        # 1. added latency at 200 RPS, small, non-streaming
        target = (f"added p50 <= {TARGET_ADDED_P50_MS:g} ms and p99 <= {TARGET_ADDED_P99_MS:g} ms at "
                  f"{TARGET_RATE:g} RPS, small, non-streaming")
        if gw == "passerelle":
            target += " (auth and ledger metering on)"
        step = find_step(steps, gw, "small", TARGET_RATE)
        paired = result.get("paired", {}).get("small", {}).get(gw)
        sweep = "" if step is None or step.get("added_ms") is None else \
            f"; sweep step: added p50 {fmt(step['added_ms']['p50'])} ms, p99 {fmt(step['added_ms']['p99'])} ms"
        for floor_name, label in _FLOORS:
            floor = result.get("paired", {}).get("small", {}).get(floor_name)
            if floor and floor["added_p50"]:
                sweep += f"; {label} in the same rounds: added p50 {_median_text(floor['added_p50'])} ms"
        if paired and paired["added_p50"] and paired["added_p99"]:
            a50, a99 = paired["added_p50"]["median"], paired["added_p99"]["median"]
            good = a50 <= TARGET_ADDED_P50_MS and a99 <= TARGET_ADDED_P99_MS and not paired["errors"]
            out.append(_verdict(target, gw, "PASS" if good else "FAIL",
                                f"median of {paired['rounds']} paired rounds: added p50 "
                                f"{_median_text(paired['added_p50'])} ms, p99 {_median_text(paired['added_p99'])} ms"
                                + (f", {paired['errors']} errors" if paired["errors"] else "") + sweep))
        elif step is None or step.get("added_ms") is None:
            out.append(_verdict(target, gw, "NOT RUN", f"no small step at {TARGET_RATE:g} RPS for {gw} and direct"))
        else:
            a50, a99 = step["added_ms"]["p50"], step["added_ms"]["p99"]
            good = a50 is not None and a99 is not None and a50 <= TARGET_ADDED_P50_MS and a99 <= TARGET_ADDED_P99_MS
            note = " (generator behind schedule)" if step.get("generator_behind") else ""
            out.append(_verdict(target, gw, "PASS" if good else "FAIL",
                                f"added p50 {fmt(a50)} ms, p99 {fmt(a99)} ms{note}"))
        # 2. and 3. throughput against LiteLLM and the pass-through, as intervals: PASS only when certain
        mine = _capacity(result, gw)
        for peer, factor, label in (("litellm", TARGET_X_LITELLM, f">= {TARGET_X_LITELLM:g}x LiteLLM"),
                                    ("passthrough", TARGET_FRACTION_PASSTHROUGH,
                                     f">= {TARGET_FRACTION_PASSTHROUGH:.0%} of the pass-through")):
            target = f"sustained throughput {label} (small)"
            if peer not in measured:
                why = gateways.get(peer, {}).get("message") or "not in this run"
                out.append(_verdict(target, gw, "NOT RUN", f"{peer}: {why}"))
                continue
            theirs = _capacity(result, peer)
            if mine is None or theirs is None:
                out.append(_verdict(target, gw, "NOT RUN", "throughput not measured on small requests"))
                continue
            low = mine[0] / theirs[1] if theirs[1] else math.inf
            high = mine[1] / theirs[0] if theirs[0] else math.inf
            status = "PASS" if low >= factor else "FAIL" if high < factor else "INCONCLUSIVE"
            detail = (f"{gw} {_span(mine[0], mine[1])} ({mine[2]}) vs {peer} {_span(theirs[0], theirs[1])} "
                      f"({theirs[2]}): ratio {_span(low, high, 'x', 2)}")
            out.append(_verdict(target, gw, status, detail))
        # 4. streaming first-byte overhead
        target = f"streaming first-byte overhead p50 <= {TARGET_TTFB_ADDED_P50_MS:g} ms at {TARGET_RATE:g} RPS"
        step = find_step(steps, gw, "stream", TARGET_RATE)
        paired = result.get("paired", {}).get("stream", {}).get(gw)
        if paired and paired["ttfb_added_p50"]:
            t50 = paired["ttfb_added_p50"]["median"]
            good = t50 <= TARGET_TTFB_ADDED_P50_MS and not paired["errors"]
            sweep = "" if step is None or step.get("ttfb_added_ms") is None else \
                f"; sweep step: {fmt(step['ttfb_added_ms']['p50'])} ms"
            for floor_name, label in _FLOORS:
                floor = result.get("paired", {}).get("stream", {}).get(floor_name)
                if floor and floor["ttfb_added_p50"]:
                    sweep += f"; {label} in the same rounds: {_median_text(floor['ttfb_added_p50'])} ms"
            out.append(_verdict(target, gw, "PASS" if good else "FAIL",
                                f"median of {paired['rounds']} paired rounds: first byte added p50 "
                                f"{_median_text(paired['ttfb_added_p50'])} ms"
                                + (f", {paired['errors']} errors" if paired["errors"] else "") + sweep))
        elif step is None or step.get("ttfb_added_ms") is None:
            out.append(_verdict(target, gw, "NOT RUN", f"no stream step at {TARGET_RATE:g} RPS for {gw} and direct"))
        else:
            t50 = step["ttfb_added_ms"]["p50"]
            good = t50 is not None and t50 <= TARGET_TTFB_ADDED_P50_MS
            out.append(_verdict(target, gw, "PASS" if good else "FAIL", f"first byte added p50 {fmt(t50)} ms"))
        # 5. 1,000 concurrent streams under 200 MB
        target = f"{TARGET_CONCURRENT_STREAMS:,} concurrent streams, RSS < {TARGET_CONCURRENT_RSS_MB:g} MB"
        step = next((s for s in steps if s["gateway"] == gw and s["scenario"] == "concurrent"), None)
        if step is None:
            out.append(_verdict(target, gw, "NOT RUN", "concurrent scenario not in this run"))
        else:
            rss = step.get("rss_peak_mb")
            good = (rss is not None and rss < TARGET_CONCURRENT_RSS_MB and step["errors"] == 0
                    and step["requests"] >= TARGET_CONCURRENT_STREAMS)
            out.append(_verdict(target, gw, "PASS" if good else "FAIL",
                                f"{step['ok']}/{step['requests']} streams completed, RSS peak {fmt(rss, 1)} MB"))
    if "passerelle-full" not in ran:
        why = gateways.get("passerelle-full", {}).get("message") or "not in this run"
        out.append(_verdict(f"every target above, with auth and metering on (at {TARGET_RATE:g} RPS: added p50 <= "
                            f"{TARGET_ADDED_P50_MS:g} ms, p99 <= {TARGET_ADDED_P99_MS:g} ms)", "passerelle-full",
                            "NOT RUN", why))
    # 6. memory soak
    soak = result.get("soak")
    target = f"memory flat over a {TARGET_SOAK_MINUTES:g}-minute soak (growth <= {TARGET_SOAK_GROWTH:.0%})"
    if not soak:
        out.append(_verdict(target, "passerelle", "NOT RUN", "run with --soak 10"))
    elif soak.get("error"):
        out.append(_verdict(target, soak["gateway"], "NOT RUN", f"the soak failed: {soak['error']}"[:300]))
    else:
        growth = soak.get("growth")
        short = soak["minutes"] < TARGET_SOAK_MINUTES
        good = growth is not None and growth <= TARGET_SOAK_GROWTH
        status = "PASS" if good else "FAIL"
        if short and good:
            status = "INCONCLUSIVE"
        out.append(_verdict(target, soak["gateway"], status,
                            f"{soak['minutes']:g} min at {soak['rate']:g} RPS: RSS "
                            f"{fmt(soak.get('baseline_mb'), 1)} -> "
                            f"{fmt(soak.get('final_mb'), 1)} MB ({fmt(None if growth is None else growth * 100, 1)}%)"
                            + (" - shorter than the target's 10 minutes" if short else "")))
    return out


def notes(result: Mapping[str, Any]) -> list[str]:
    """What a reader must know to trust (or not) the numbers."""
    out = ["Latency runs from each request's scheduled send time (open loop), so queueing anywhere is counted. "
           "Added = gateway percentile minus direct percentile at the same scenario and rate; a difference of "
           "percentiles, not a percentile of differences, so it can be slightly negative at low load.",
           "RSS = sum of VmRSS over the gateway's process tree (parent + workers; shared pages counted in each), "
           "sampled at 10 Hz; PSS (shared pages divided, 1 Hz) is in latest.json."]
    if result.get("paired"):
        out.append(f"The latency targets at {TARGET_RATE:g} RPS are decided on paired rounds: the gateways under a "
                   f"target run side by side, and {_round_design(result)}, and the verdict takes the median over "
                   "the rounds (lowest and highest round in brackets). The sweep step at the same rate is quoted "
                   "beside it.")
    out += [str(n) for n in result.get("run_notes", [])]
    steps: list[Step] = result.get("steps", [])
    late = [s for s in steps if s.get("generator_behind")]
    if late:
        where = ", ".join(f"{s['gateway']}/{s['scenario']}@{s.get('offered_rps') or 'burst'}" for s in late[:12])
        out.append(f"The load generator fell behind its schedule (send delay p99 > {GENERATOR_LATE_P99_MS:g} ms) in "
                   f"{len(late)} step(s): {where}. Their latencies include the generator's own lag (it shares the "
                   "cores with the gateway and the upstream).")
    for step in steps:
        if step["gateway"] == "direct" and step.get("saturated"):
            out.append(f"Direct itself saturated in `{step['scenario']}` at {step['offered_rps']:g} RPS "
                       f"({step['saturated']}): there the upstream simulator or the load generator is the limit on "
                       "this machine, and the gateways' results at that rate and above say little about the gateways.")
    busy = [s for s in steps if (s.get("cpu_pct") or {}).get("other", 0.0) > 10.0]
    if busy:
        worst = max(busy, key=lambda s: s["cpu_pct"]["other"])
        out.append(f"Processes outside the benchmark (or kernel threads) used more than 10% of the CPU in "
                   f"{len(busy)} step(s) (worst "
                   f"{worst['cpu_pct']['other']:.0f}% in {worst['gateway']}/{worst['scenario']}): numbers may be "
                   "disturbed; re-run on a quiet machine.")
    load = result.get("machine", {}).get("loadavg_before")
    if isinstance(load, float) and load > 0.5:
        out.append(f"The load average was {load:.2f} before the run: the machine was not idle.")
    if result.get("settings", {}).get("quick"):
        out.append("Quick run: short steps and few rates; indicative only, not for publication.")
    return out


def _order(name: str, order: Sequence[str]) -> int:
    return order.index(name) if name in order else len(order)


def render_markdown(result: Mapping[str, Any]) -> str:
    """The results as Markdown: machine, gateways, one table per scenario, closed burst, soak, verdicts."""
    machine = result.get("machine", {})
    settings = result.get("settings", {})
    lines = ["# Passerelle benchmark", ""]
    lines.append(f"Run {result.get('generated', '?')} on {machine.get('cpu', '?')}, {machine.get('cores', '?')} cores, "
                 f"{fmt(machine.get('ram_gb'), 1)} GB RAM, Linux {machine.get('kernel', '?')}, "
                 f"Python {machine.get('python', '?')}; load average before the run "
                 f"{fmt(machine.get('loadavg_before'), 2)}.")
    versions = machine.get("versions", {})
    if versions:
        lines.append("Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items() if v) + ".")
    lines.append(f"Settings: {settings.get('workers', '?')} workers per gateway, steps of "
                 f"{settings.get('duration', '?')} s after {settings.get('warmup', '?')} s of warm-up, "
                 f"rates {settings.get('rates', [])} RPS{' (quick run)' if settings.get('quick') else ''}. "
                 "Loadgen, upstream and gateway share the machine's cores.")
    lines += ["", "## Gateways", "", "| gateway | status | detail |", "|---|---|---|"]
    for name, info in sorted(result.get("gateways", {}).items(), key=lambda kv: _order(kv[0], GATEWAY_ORDER)):
        detail = str(info.get("message") or info.get("description") or "").replace("\n", " ").replace("|", "/")
        lines.append(f"| {name} | {info.get('status')} | {detail[:300]} |")
    steps: list[Step] = result.get("steps", [])
    scenarios = settings.get("scenarios", {})
    for scenario in sorted({s["scenario"] for s in steps}, key=lambda n: _order(n, SCENARIO_ORDER)):
        mine = sorted((s for s in steps if s["scenario"] == scenario),
                      key=lambda s: (_order(s["gateway"], GATEWAY_ORDER), s.get("offered_rps") or 0))
        lines += ["", f"## Scenario `{scenario}`", ""]
        if scenario in scenarios:
            lines += [str(scenarios[scenario].get("description", "")), ""]
        lines += _table(mine, stream=scenario in ("stream", "concurrent"))
    closed = result.get("closed", [])
    if closed:
        lines += ["", "## Maximum throughput, closed loop (small; not the headline)", "",
                  "| gateway | connections | achieved RPS | errors | p50 ms | p99 ms |", "|---|---|---|---|---|---|"]
        for c in sorted(closed, key=lambda c: _order(c["gateway"], GATEWAY_ORDER)):
            lines.append(f"| {c['gateway']} | {c['concurrency']} | {c['achieved_rps']:.0f} | {c['errors']} | "
                         f"{fmt(c['latency_ms']['p50'])} | {fmt(c['latency_ms']['p99'])} |")
    summ = result.get("summary", {})
    if summ:
        lines += ["", "## Sustained throughput (open loop, highest achieved before saturation)", "",
                  "| gateway | scenario | sustained RPS | saturated at | why |", "|---|---|---|---|---|"]
        for gateway in sorted(summ, key=lambda n: _order(n, GATEWAY_ORDER)):
            for scenario in sorted(summ[gateway], key=lambda n: _order(n, SCENARIO_ORDER)):
                info = summ[gateway][scenario]
                value = fmt(info["sustained_rps"], 0)
                if info["lower_bound"] and info["sustained_rps"] is not None:
                    value = f">= {value}"
                sat = "not within the sweep" if info["saturated_at_rps"] is None else f"{info['saturated_at_rps']:g}"
                lines.append(f"| {gateway} | {scenario} | {value} | {sat} | {info['reason'] or ''} |")
    lines += _paired_table(result)
    soak = result.get("soak")
    if soak and soak.get("error"):
        lines += ["", "## Memory soak", "", f"{soak['gateway']}: the soak failed: {soak['error']}"]
    elif soak:
        lines += ["", "## Memory soak", "",
                  f"{soak['gateway']} at {soak['rate']:g} RPS for {soak['minutes']:g} min: RSS "
                  f"{fmt(soak.get('baseline_mb'), 1)} MB after warm-up, "
                  f"{fmt(soak.get('final_mb'), 1)} MB at the end, "
                  f"peak {fmt(soak.get('peak_mb'), 1)} MB; {soak.get('ok', 0)} ok, {soak.get('errors', 0)} errors."]
    lines += ["", "## Targets", "", "| target | gateway | verdict | measured |", "|---|---|---|---|"]
    for v in result.get("verdicts", []):
        lines.append(f"| {v['target']} | {v['gateway']} | **{v['status']}** | {v['detail']} |")
    notes = result.get("notes", [])
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


def _table(steps: list[Step], *, stream: bool) -> list[str]:
    head = ["gateway", "rate", "achieved", "errors", "p50", "p90", "p99", "added p50", "added p90", "added p99"]
    if stream:
        head += ["TTFB p50", "TTFB added p50", "TTFB added p99"]
    head += ["RSS peak MB", "CPU ms/req", "note"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in steps:
        lat, added = s["latency_ms"], s.get("added_ms") or {}
        rate = "burst" if s.get("offered_rps") is None else f"{s['offered_rps']:g}"
        cells = [s["gateway"], rate, fmt(s.get("achieved_rps"), 0), f"{s['errors']}/{s['requests']}",
                 fmt(lat["p50"]), fmt(lat["p90"]), fmt(lat["p99"]),
                 fmt(added.get("p50")), fmt(added.get("p90")), fmt(added.get("p99"))]
        if stream:
            tadded = s.get("ttfb_added_ms") or {}
            cells += [fmt(s["ttfb_ms"]["p50"]), fmt(tadded.get("p50")), fmt(tadded.get("p99"))]
        notes = []
        if s.get("saturated"):
            notes.append(f"saturated: {s['saturated']}")
        if s.get("baseline_saturated"):
            notes.append("direct saturated too: no added latency")
        if s.get("generator_behind"):
            notes.append(f"generator late (p99 {fmt(s['lateness_ms']['p99'], 1)} ms)")
        if s.get("error_kinds"):
            notes.append(", ".join(f"{k} x{v}" for k, v in s["error_kinds"].items()))
        cells += [fmt(s.get("rss_peak_mb"), 1), fmt(s.get("cpu_ms_per_request"), 2), "; ".join(notes)]
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def _round_design(result: Mapping[str, Any]) -> str:
    """How this run's rounds paired each gateway with direct (runs before pairs measured direct once a round)."""
    if any("pair" in s for s in result.get("rounds", [])):
        return ("each round measures every gateway right beside a measurement of direct (direct first in even "
                "rounds, second in odd ones), and a round's added latency is the gateway's percentile minus that "
                "neighbouring direct step's")
    return ("each round measures direct and each gateway in turn (the order reversed every other round), and a "
            "round's added latency is the gateway's percentile minus direct's in that round")


def _paired_table(result: Mapping[str, Any]) -> list[str]:
    paired: Mapping[str, Mapping[str, Mapping[str, Any]]] = result.get("paired", {})
    if not paired:
        return []
    lines = ["", f"## Paired rounds at {TARGET_RATE:g} RPS (the latency targets)", "",
             f"Median over the rounds (lowest to highest round); {_round_design(result)}.", "",
             "| scenario | gateway | rounds | direct p50 | added p50 | added p99 | direct TTFB p50 | TTFB added p50 "
             "| errors | generator late |", "|---|---|---|---|---|---|---|---|---|---|"]
    for scenario in sorted(paired, key=lambda n: _order(n, SCENARIO_ORDER)):
        for gateway in sorted(paired[scenario], key=lambda n: _order(n, GATEWAY_ORDER)):
            e = paired[scenario][gateway]
            stream = scenario == "stream"
            lines.append(f"| {scenario} | {gateway} | {e['rounds']} | {_median_text(e['direct_p50'])} | "
                         f"{_median_text(e['added_p50'])} | {_median_text(e['added_p99'])} | "
                         f"{_median_text(e['direct_ttfb_p50']) if stream else ''} | "
                         f"{_median_text(e['ttfb_added_p50']) if stream else ''} | {e['errors']} | "
                         f"{e['generator_behind_rounds']} |")
    return lines
