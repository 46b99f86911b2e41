"""The PNG: added latency (p50 and p99) against offered rate, for every gateway, one panel per scenario."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bench.report import GATEWAY_ORDER, SCENARIO_ORDER

FLOOR_MS = 0.01  # a log axis cannot show zero or less: smaller added latencies are drawn at this floor
COLORS = {"relay": "black", "passthrough": "tab:gray", "passerelle": "tab:blue", "passerelle-granian": "tab:cyan",
          "passerelle-python": "tab:brown",
          "passerelle-budgets": "tab:orange", "passerelle-finance": "tab:olive",
          "passerelle-full": "tab:purple", "passerelle-scaleout": "tab:green", "passerelle-anthropic": "tab:pink",
          "litellm": "tab:red"}


def plot_added_latency(result: Mapping[str, Any], path: Path) -> bool:
    """Write the plot; False when no step has an added latency to draw."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [s for s in result.get("steps", []) if s.get("added_ms") and s.get("offered_rps")]
    scenarios = [n for n in SCENARIO_ORDER if any(s["scenario"] == n for s in steps)]
    if not scenarios:
        return False
    fig, axes = plt.subplots(1, len(scenarios), figsize=(5.5 * len(scenarios), 4.5), squeeze=False)
    for ax, scenario in zip(axes[0], scenarios, strict=True):
        for gateway in GATEWAY_ORDER:
            mine = sorted((s for s in steps if s["scenario"] == scenario and s["gateway"] == gateway),
                          key=lambda s: s["offered_rps"])
            if not mine:
                continue
            rates = [s["offered_rps"] for s in mine]
            color = COLORS.get(gateway)
            for key, style in (("p50", "-o"), ("p99", "--^")):
                values = [max(s["added_ms"][key], FLOOR_MS) if s["added_ms"][key] is not None else float("nan")
                          for s in mine]
                ax.plot(rates, values, style, color=color, label=f"{gateway} {key}", markersize=4)
            for s in mine:
                if s.get("saturated"):
                    ax.annotate("sat.", (s["offered_rps"], max(s["added_ms"]["p50"] or FLOOR_MS, FLOOR_MS)),
                                fontsize=7, color=color, textcoords="offset points", xytext=(3, 3))
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(f"{scenario}: added latency vs rate")
        ax.set_xlabel("offered rate (requests/s)")
        ax.set_ylabel("added latency over direct (ms)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    machine = result.get("machine", {})
    fig.suptitle(f"Passerelle benchmark, {machine.get('cpu', '?')}, {machine.get('cores', '?')} cores "
                 f"({result.get('generated', '')}); values <= {FLOOR_MS} ms drawn at {FLOOR_MS}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def plot_soak(result: Mapping[str, Any], path: Path) -> bool:
    """RSS of the gateway's process tree over the soak; False when there was no soak."""
    soak = result.get("soak")
    if not soak or not soak.get("series"):
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4))
    t = [point[0] / 60 for point in soak["series"]]
    ax.plot(t, [point[1] for point in soak["series"]], "-", color="tab:blue", label="RSS (parent + workers)")
    for key, style in (("baseline_mb", ":"), ("final_mb", "--")):
        if soak.get(key) is not None:
            ax.axhline(soak[key], linestyle=style, color="gray", label=key.replace("_mb", ""))
    ax.set_xlabel("minutes")
    ax.set_ylabel("MB")
    ax.set_ylim(0, max(point[1] for point in soak["series"]) * 1.2)
    ax.set_title(f"{soak['gateway']} memory at {soak['rate']:g} RPS for {soak['minutes']:g} min")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
