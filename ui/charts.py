"""The dashboard's and the team view's charts (book against target, priority mix, health
over time, renewals by month, book over time), drawn with `portfolio.charts`' primitives:
server-rendered SVG with a `<title>` and a `<desc>` giving the figures in words."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal

from django.utils.html import escape
from django.utils.safestring import SafeString

from portfolio.charts import (
    ACCENT,
    GRID,
    HEALTH_COLOURS,
    HEALTH_ORDER,
    INK,
    MUTED,
    money,
    svg,
    svg_text,
)


def book_vs_target(arr: Decimal | float, target: Decimal | float) -> SafeString:
    """A horizontal bar of the book's ARR with the target as a marked line."""
    width, height, left = 240, 50, 4
    scale_max = max(float(arr), float(target), 1.0) * 1.1
    span = width - 2 * left
    bar = span * float(arr) / scale_max
    tx = left + span * float(target) / scale_max
    pct = 100 * float(arr) / float(target) if target else 0
    fill = HEALTH_COLOURS["green"] if pct >= 100 else ACCENT
    desc = f"Book of business {money(arr)} against a target of {money(target)} ({pct:.0f}%)."
    anchor = "end" if tx > width - 50 else "middle"
    body = [
        f'<rect x="{left}" y="6" width="{span}" height="22" rx="4" fill="#eef0f4"/>',
        f'<rect x="{left}" y="6" width="{bar:.1f}" height="22" rx="4" fill="{fill}"/>',
        f'<line x1="{tx:.1f}" x2="{tx:.1f}" y1="2" y2="32" stroke="{INK}" stroke-width="2" '
        f'stroke-dasharray="4 3"/>',
        svg_text(tx, 46, f"target {money(target)}", anchor=anchor, fill=MUTED, size=12),
    ]
    return svg(width, height, "Book of business against target", desc, body, "chart-book")


def priority_mix(counts: dict[int, int], target_share: float | None) -> SafeString:
    """Accounts per priority as one stacked bar, with the P1 target share marked."""
    width, height, left = 240, 50, 4
    span = width - 2 * left
    total = sum(counts.values()) or 1
    fills = {1: ACCENT, 2: "#7f84d9", 3: "#aeb4c2", 4: "#d4d8e0"}
    body, x = [], float(left)
    parts = []
    for level in (1, 2, 3, 4):
        n = counts.get(level, 0)
        w = span * n / total
        if n:
            body.append(
                f'<rect x="{x:.1f}" y="6" width="{w:.1f}" height="22" fill="{fills[level]}">'
                f"<title>P{level}: {n}</title></rect>"
            )
            if w > 40:
                ink = "#fff" if level <= 2 else INK
                body.append(svg_text(x + w / 2, 22, f"P{level} {n}", anchor="middle", fill=ink))
        parts.append(f"P{level} {n}")
        x += w
    desc = ", ".join(parts) + "."
    if target_share is not None:
        tx = left + span * target_share
        body.append(
            f'<line x1="{tx:.1f}" x2="{tx:.1f}" y1="2" y2="32" stroke="{INK}" stroke-width="2" '
            f'stroke-dasharray="4 3"/>'
        )
        body.append(
            svg_text(tx, 46, f"P1 target {target_share:.0%}", anchor="middle", fill=MUTED, size=12)
        )
        desc += f" Target share of P1: {target_share:.0%}."
    return svg(width, height, "Accounts by priority", desc, body, "chart-priority")


def health_mix_over_time(series: Sequence[tuple[str, dict[str, int]]]) -> SafeString:
    """Stacked columns of the health mix, one per period (label, {colour: count})."""
    n = max(len(series), 1)
    col_w = 34 if n > 1 else 60
    gap = 14
    width = max(420, 40 + n * (col_w + gap))
    height, top, base = 190, 16, 150
    plot_h = base - top
    body = [f'<line x1="30" x2="{width - 4}" y1="{base}" y2="{base}" stroke="{GRID}"/>']
    descs = []
    for i, (label, mix) in enumerate(series):
        total = sum(mix.get(c, 0) for c in HEALTH_ORDER)
        x = 40 + i * (col_w + gap)
        y = float(base)
        for colour in HEALTH_ORDER:
            count = mix.get(colour, 0)
            if not count:
                continue
            h = plot_h * count / total if total else 0
            y -= h
            body.append(
                f'<rect x="{x}" y="{y:.1f}" width="{col_w}" height="{h:.1f}" '
                f'fill="{HEALTH_COLOURS[colour]}"><title>{escape(label)}: {count} {colour}'
                f"</title></rect>"
            )
        body.append(svg_text(x + col_w / 2, base + 16, label, anchor="middle", size=11, fill=MUTED))
        descs.append(f"{label}: " + ", ".join(f"{mix.get(c, 0)} {c}" for c in HEALTH_ORDER))
    # legend
    for j, colour in enumerate(HEALTH_ORDER):
        lx = 40 + j * 80
        body.append(
            f'<rect x="{lx}" y="{height - 14}" width="12" height="12" '
            f'fill="{HEALTH_COLOURS[colour]}"/>'
        )
        body.append(svg_text(lx + 16, height - 4, colour.title(), size=11))
    title = "Health mix over time" if len(series) > 1 else "Health mix today"
    desc = "; ".join(descs) + "." if descs else "No health scores yet."
    return svg(width, height, title, desc, body, "chart-health")


def renewals_by_month(rows: Sequence[dict]) -> SafeString:
    """Columns of ARR renewing per month, with the number of renewals above each."""
    n = max(len(rows), 1)
    col_w, gap, left = 26, 8, 10
    width = left * 2 + n * (col_w + gap)
    height, top, base = 180, 22, 150
    peak = max((float(r["arr"]) for r in rows), default=0) or 1.0
    body = [f'<line x1="{left}" x2="{width - left}" y1="{base}" y2="{base}" stroke="{GRID}"/>']
    descs = []
    for i, row in enumerate(rows):
        month: dt.date = row["month"]
        x = left + i * (col_w + gap)
        h = (base - top) * float(row["arr"]) / peak
        label = month.strftime("%b")
        if row["count"]:
            body.append(
                f'<rect x="{x}" y="{base - h:.1f}" width="{col_w}" height="{h:.1f}" '
                f'fill="{ACCENT}"><title>{month:%B %Y}: {row["count"]} renewals, '
                f"{money(row['arr'])}</title></rect>"
            )
            body.append(
                svg_text(x + col_w / 2, base - h - 4, str(row["count"]), anchor="middle", size=11)
            )
            descs.append(f"{month:%B %Y} {row['count']} ({money(row['arr'])})")
        body.append(svg_text(x + col_w / 2, base + 14, label, anchor="middle", size=11, fill=MUTED))
        if month.month == 1 or i == 0:
            body.append(
                svg_text(
                    x + col_w / 2, base + 27, str(month.year), anchor="middle", size=10, fill=MUTED
                )
            )
    desc = ("Renewals by month: " + "; ".join(descs) + ".") if descs else "No renewals ahead."
    return svg(width, height + 6, "Renewals by month (ARR)", desc, body, "chart-renewals")


def book_over_time(rows: Sequence[dict], target: Decimal | float) -> SafeString:
    """Columns of the book's ARR at each month's end (rows of `panels.book_trend`), with
    the book-of-business target as a dashed line across, so a month under target shows."""
    n = max(len(rows), 1)
    col_w, gap, left = 30, 12, 56
    width = max(420, left + 10 + n * (col_w + gap))
    height, top, base = 190, 18, 150
    peak = max([float(r["arr"]) for r in rows] + [float(target), 1.0]) * 1.1
    plot_h = base - top

    def y(value: float) -> float:
        return base - plot_h * value / peak

    ty = y(float(target))
    body = [
        f'<line x1="{left - 4}" x2="{width - 4}" y1="{base}" y2="{base}" stroke="{GRID}"/>',
        svg_text(left - 8, base + 4, "$0", anchor="end", size=11, fill=MUTED),
        svg_text(left - 8, ty + 4, money(target), anchor="end", size=11, fill=MUTED),
    ]
    descs = []
    for i, row in enumerate(rows):
        arr = float(row["arr"])
        x = left + i * (col_w + gap)
        fill = HEALTH_COLOURS["green"] if arr >= float(target) else ACCENT
        body.append(
            f'<rect x="{x}" y="{y(arr):.1f}" width="{col_w}" height="{base - y(arr):.1f}" '
            f'fill="{fill}"><title>{escape(row["label"])}: {money(arr)}</title></rect>'
        )
        body.append(
            svg_text(x + col_w / 2, base + 16, row["label"], anchor="middle", size=11, fill=MUTED)
        )
        pct = 100 * arr / float(target) if target else 0
        descs.append(f"{row['label']} {money(arr)} ({pct:.0f}% of target)")
    body.append(
        f'<line x1="{left - 4}" x2="{width - 4}" y1="{ty:.1f}" y2="{ty:.1f}" stroke="{INK}" '
        f'stroke-width="2" stroke-dasharray="5 4"/>'
    )
    body.append(svg_text(width - 6, ty - 5, "target", anchor="end", size=11, fill=INK))
    desc = (
        f"Book of business at each month's end against a target of {money(target)}: "
        + "; ".join(descs)
        + "."
        if descs
        else "No history yet."
    )
    return svg(width, height + 6, "Book of business against target, by month", desc, body,
                "chart-book-trend")  # fmt: skip
