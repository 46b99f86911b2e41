"""Charts as inline SVG, drawn on the server (no script, no download)."""

from __future__ import annotations

from collections.abc import Sequence

from passerelle.console.html import Html, esc

_W, _H, _PAD = 560, 160, 28


def _fmt(value: float) -> str:
    return f"{value:.4g}" if value < 1000 else f"{value:,.0f}"


def bars(title: str, labels: Sequence[str], values: Sequence[float], unit: str = "") -> Html:
    """A bar per label (e.g. per day), with the maximum marked on the axis."""
    top = max(values, default=0) or 1
    n = max(len(values), 1)
    step = (_W - 2 * _PAD) / n
    parts = [f'<line x1="{_PAD}" y1="{_H - _PAD}" x2="{_W - _PAD}" y2="{_H - _PAD}" class="axis"/>',
             f'<text x="2" y="{_PAD - 8}" class="tick">{esc(_fmt(top))}{esc(unit)}</text>']
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        height = (_H - 2 * _PAD) * value / top
        x = _PAD + i * step + step * 0.1
        parts.append(f'<rect x="{x:.1f}" y="{_H - _PAD - height:.1f}" width="{step * 0.8:.1f}" '
                     f'height="{height:.1f}" class="bar"><title>{esc(label)}: {esc(_fmt(value))}{esc(unit)}'
                     "</title></rect>")
        if n <= 16 or i % (n // 8 + 1) == 0:
            parts.append(f'<text x="{x:.1f}" y="{_H - _PAD + 14}" class="tick">{esc(label[-5:])}</text>')
    return Html(f'<figure class="chart"><figcaption>{esc(title)}</figcaption>'
                f'<svg viewBox="0 0 {_W} {_H}" role="img" aria-label="{esc(title)}">{"".join(parts)}</svg>'
                "</figure>")
