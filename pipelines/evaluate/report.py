"""Reports of an evaluation: a Markdown table of the modes side by side, and a self-contained SVG plot.

>>> from pipelines.evaluate.run import EvalResult
>>> r = EvalResult("scifact", "test", "hybrid", "e5", dict.fromkeys(METRIC_KEYS, 0.5) | {"queries": 300.0}, 30, 40)
>>> print(markdown_report([r]).splitlines()[-1])
| hybrid | 0.5000 | 0.5000 | 0.5000 | 0.5000 | 30.0 | 40.0 |
"""

from __future__ import annotations

from collections.abc import Sequence

from pipelines.evaluate.metrics import METRIC_KEYS
from pipelines.evaluate.run import EvalResult


def markdown_report(results: Sequence[EvalResult]) -> str:
    """A table of the modes side by side."""
    keys = METRIC_KEYS
    first = results[0]
    lines = [
        f"# {first.dataset} ({first.split}), {int(first.metrics['queries'])} queries, model {first.model}",
        "",
        "| mode | " + " | ".join(keys) + " | p50 ms | p95 ms |",
        "|---" * (len(keys) + 3) + "|",
    ]
    for r in results:
        mode = r.mode + (" + rerank" if r.rerank else "")
        cells = " | ".join(f"{r.metrics[k]:.4f}" for k in keys)
        lines.append(f"| {mode} | {cells} | {r.latency_ms_p50:.1f} | {r.latency_ms_p95:.1f} |")
    return "\n".join(lines) + "\n"


def svg_plot(results: Sequence[EvalResult]) -> str:
    """Grouped bars of the metrics per mode, as a self-contained SVG (no plotting library needed)."""
    keys = METRIC_KEYS
    colours = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948")
    width, height, left, bottom, top = 640, 320, 50, 40, 30
    plot_h = height - bottom - top
    group_w = (width - left - 20) / len(keys)
    bar_w = group_w * 0.8 / max(1, len(results))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
        'font-size="11">',
        f'<text x="{left}" y="18" font-size="13">{results[0].dataset} ({results[0].split})</text>',
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - 10}" y2="{height - bottom}" stroke="#333"/>',
    ]
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        y = height - bottom - tick * plot_h
        parts.append(f'<text x="{left - 8}" y="{y + 4:.1f}" text-anchor="end">{tick:.2f}</text>')
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - 10}" y2="{y:.1f}" stroke="#ddd"/>')
    for g, key in enumerate(keys):
        x0 = left + g * group_w + group_w * 0.1
        parts.append(f'<text x="{x0 + group_w * 0.4:.1f}" y="{height - bottom + 16}" text-anchor="middle">{key}</text>')
        for i, r in enumerate(results):
            value = r.metrics[key]
            h = value * plot_h
            x = x0 + i * bar_w
            parts.append(
                f'<rect x="{x:.1f}" y="{height - bottom - h:.1f}" width="{bar_w * 0.9:.1f}" height="{h:.1f}" '
                f'fill="{colours[i % len(colours)]}"><title>{r.mode}: {value:.4f}</title></rect>'
            )
    for i, r in enumerate(results):
        x = left + i * 120
        parts.append(f'<rect x="{x}" y="{height - 14}" width="10" height="10" fill="{colours[i % len(colours)]}"/>')
        parts.append(f'<text x="{x + 14}" y="{height - 5}">{r.mode}{" + rerank" if r.rerank else ""}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
