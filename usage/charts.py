"""Small server-rendered SVG trend charts of product usage (the account page), drawn the
way `portfolio.charts` draws: no script, a `<title>` and a `<desc>` with the figures."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from django.utils.html import escape
from django.utils.safestring import SafeString

from portfolio.charts import ACCENT, GRID, HEALTH_COLOURS, INK, MUTED, svg, svg_text


def _figure(value: float, unit: str) -> str:
    text = f"{value:,.0f}" if float(value).is_integer() or abs(value) >= 100 else f"{value:,.1f}"
    return f"{text}{unit}"


def trend(
    points: Sequence[tuple[dt.date, float | None]],
    *,
    title: str,
    unit: str = "",
    lines: Sequence[tuple[float, str]] = (),
    ceiling: float | None = None,
) -> SafeString:
    """One measure month by month as small columns, the latest value written at the right;
    `lines` are thresholds drawn across (value, label), e.g. adoption's 50% and 70%."""
    n = max(len(points), 1)
    col_w, gap, left, top, base = 12, 4, 4, 14, 54
    width = left + n * (col_w + gap) + 56
    height = base + 16
    known = [v for _, v in points if v is not None]
    peak = max([*known, *(v for v, _ in lines), ceiling or 0, 1.0])
    body = [
        f'<line x1="{left}" x2="{left + n * (col_w + gap)}" y1="{base}" y2="{base}" '
        f'stroke="{GRID}"/>'
    ]
    descs = []
    for i, (month, value) in enumerate(points):
        x = left + i * (col_w + gap)
        if value is None:
            descs.append(f"{month:%b %Y} no data")
            continue
        h = max(1.0, (base - top) * float(value) / peak)
        body.append(
            f'<rect x="{x}" y="{base - h:.1f}" width="{col_w}" height="{h:.1f}" fill="{ACCENT}">'
            f"<title>{month:%b %Y}: {escape(_figure(value, unit))}</title></rect>"
        )
        descs.append(f"{month:%b %Y} {_figure(value, unit)}")
    if points:
        body.append(svg_text(left, height - 2, f"{points[0][0]:%b %y}", size=10, fill=MUTED))
        end = left + n * (col_w + gap) - gap
        body.append(
            svg_text(end, height - 2, f"{points[-1][0]:%b %y}", anchor="end", size=10, fill=MUTED)
        )
    for value, label in lines:
        y = base - (base - top) * value / peak
        body.append(
            f'<line x1="{left}" x2="{left + n * (col_w + gap)}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="{HEALTH_COLOURS["amber"]}" stroke-dasharray="3 2"/>'
        )
        body.append(svg_text(left + n * (col_w + gap) + 2, y + 4, label, size=10, fill=MUTED))
    latest = known[-1] if known else None
    if latest is not None:
        body.append(
            svg_text(
                width - 2, 12, _figure(latest, unit), anchor="end", size=12, fill=INK, weight="bold"
            )
        )
    desc = f"{title} by month: " + "; ".join(descs) + "."
    return svg(width, height, title, desc, body, "chart-usage")
