"""Server-side SVG charts: no script, no front-end build. Text is escaped here
because the result is inserted into pages as markup."""
from __future__ import annotations

from markupsafe import Markup, escape

SEVERITY_COLOURS: dict[str, str] = {
    "info": "#9fb3c8", "low": "#5b9bd5", "medium": "#f0b429", "high": "#e8590c", "critical": "#c92a2a",
}


def stacked_bars(labels: list[str], series: dict[str, dict[str, int]], *, title: str,
                 names: dict[str, str], width: int = 1200, height: int = 280) -> Markup:
    """A stacked bar chart: one bar per label, one coloured segment per series (in dict order)."""
    left, right, top, bottom = 48, 12, 16, 46
    plot_w, plot_h = width - left - right, height - top - bottom
    totals = [sum(series[s].get(lab, 0) for s in series) for lab in labels]
    peak = max(totals + [1])
    scale = _nice(peak)
    n = max(len(labels), 1)
    slot = plot_w / n
    bar = max(slot * 0.75, 1.0)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} {height}" '
             f'role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>']
    for i in range(5):  # grid lines and y labels
        value = scale * i / 4
        y = top + plot_h - plot_h * i / 4
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
                     f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" class="axis">{int(value)}</text>')
    every = max(1, n // 8)
    for i, lab in enumerate(labels):
        x = left + i * slot + (slot - bar) / 2
        y = top + plot_h
        for name, values in series.items():
            v = values.get(lab, 0)
            if not v:
                continue
            h = plot_h * v / scale
            y -= h
            parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                         f'fill="{SEVERITY_COLOURS.get(name, "#888")}"><title>{escape(lab)} '
                         f'{escape(names.get(name, name))}: {v}</title></rect>')
        if i % every == 0:
            short = lab[11:] + ":00" if len(lab) == 13 else lab[5:]
            parts.append(f'<text x="{left + i * slot + slot / 2:.1f}" y="{top + plot_h + 16}" '
                         f'text-anchor="middle" class="axis">{escape(short)}</text>')
    lx = left
    for name in series:  # legend
        parts.append(f'<rect x="{lx}" y="{height - 16}" width="10" height="10" '
                     f'fill="{SEVERITY_COLOURS.get(name, "#888")}"/>'
                     f'<text x="{lx + 14}" y="{height - 7}" class="legend">{escape(names.get(name, name))}</text>')
        lx += 24 + 9 * max(len(names.get(name, name)), 3)
    parts.append("</svg>")
    return Markup("".join(parts))


def _nice(peak: int) -> float:
    """An axis maximum at or above peak whose four grid steps are round (1, 2, 5 x 10^n)."""
    step = 1
    while True:
        for m in (1, 2, 5):
            if 4 * m * step >= peak:
                return float(4 * m * step)
        step *= 10
