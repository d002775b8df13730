"""Server-rendered SVG charts: no chart library, no script, so they work under a strict CSP
and in tests. Each chart is an `<svg role="img">` with a `<title>` and a `<desc>` giving
the figures in words, for screen readers. Colours are SVG presentation attributes (not
inline CSS, which the CSP forbids); the text colours meet WCAG AA contrast on white.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterable, Sequence
from decimal import Decimal

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

HEALTH_COLOURS = {"green": "#1f7a3a", "yellow": "#c9a100", "amber": "#d97706", "red": "#b42318"}
HEALTH_ORDER = ["green", "yellow", "amber", "red"]
INK, MUTED, GRID, ACCENT = "#1d2330", "#5b6474", "#d9dde4", "#3a3fb0"
_ids = itertools.count(1)


def _svg(width: int, height: int, title: str, desc: str, body: Iterable[str], cls: str) -> str:
    n = next(_ids)
    return mark_safe(
        f'<svg class="chart {cls}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-labelledby="chart-t{n} chart-d{n}" xmlns="http://www.w3.org/2000/svg" '
        f'preserveAspectRatio="xMinYMin meet">'
        f'<title id="chart-t{n}">{escape(title)}</title><desc id="chart-d{n}">{escape(desc)}</desc>'
        + "".join(body)
        + "</svg>"
    )


def money(value: Decimal | float | int) -> str:
    """1234567 -> "$1.2M"; 45000 -> "$45k"."""
    v = float(value)
    if abs(v) >= 1_000_000:
        return f"${v / 1_000_000:.1f}M"
    if abs(v) >= 1_000:
        return f"${v / 1_000:.0f}k"
    return f"${v:.0f}"


def _text(
    x: float,
    y: float,
    text: str,
    *,
    anchor: str = "start",
    size: int = 12,
    fill: str = INK,
    weight: str = "normal",
) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}" '
        f'fill="{fill}" font-weight="{weight}">{escape(text)}</text>'
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
        _text(tx, 46, f"target {money(target)}", anchor=anchor, fill=MUTED, size=12),
    ]
    return _svg(width, height, "Book of business against target", desc, body, "chart-book")


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
                body.append(_text(x + w / 2, 22, f"P{level} {n}", anchor="middle", fill=ink))
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
            _text(tx, 46, f"P1 target {target_share:.0%}", anchor="middle", fill=MUTED, size=12)
        )
        desc += f" Target share of P1: {target_share:.0%}."
    return _svg(width, height, "Accounts by priority", desc, body, "chart-priority")


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
        body.append(_text(x + col_w / 2, base + 16, label, anchor="middle", size=11, fill=MUTED))
        descs.append(f"{label}: " + ", ".join(f"{mix.get(c, 0)} {c}" for c in HEALTH_ORDER))
    # legend
    for j, colour in enumerate(HEALTH_ORDER):
        lx = 40 + j * 80
        body.append(
            f'<rect x="{lx}" y="{height - 14}" width="12" height="12" '
            f'fill="{HEALTH_COLOURS[colour]}"/>'
        )
        body.append(_text(lx + 16, height - 4, colour.title(), size=11))
    title = "Health mix over time" if len(series) > 1 else "Health mix today"
    desc = "; ".join(descs) + "." if descs else "No health scores yet."
    return _svg(width, height, title, desc, body, "chart-health")


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
                _text(x + col_w / 2, base - h - 4, str(row["count"]), anchor="middle", size=11)
            )
            descs.append(f"{month:%B %Y} {row['count']} ({money(row['arr'])})")
        body.append(_text(x + col_w / 2, base + 14, label, anchor="middle", size=11, fill=MUTED))
        if month.month == 1 or i == 0:
            body.append(
                _text(
                    x + col_w / 2, base + 27, str(month.year), anchor="middle", size=10, fill=MUTED
                )
            )
    desc = ("Renewals by month: " + "; ".join(descs) + ".") if descs else "No renewals ahead."
    return _svg(width, height + 6, "Renewals by month (ARR)", desc, body, "chart-renewals")


# --- The US Enterprise prioritization flowchart ----------------------------------------
# Nodes of the handbook's mermaid chart (tam-account-engagement.md, "Determining
# priority"), preceded by the checks that apply before any regional model (DESIGN.md).
US_ENTERPRISE_STEPS: list[tuple[str, str, str]] = [
    # (rule id, box text, outcome when Yes)
    ("unmanaged_child", "Unmanaged child account", "P3"),
    ("digital_only", "Digital-only customer", "P4"),
    ("onboarding_incomplete", "TAM-assigned, onboarding not complete", "P1"),
    ("uptier_opportunity", "Open up-tier opp closing in next 6 months", "P1"),
    ("stage_adoption", "Stage adoption this quarter > 2 h/week TAM time", "P1"),
    ("infrastructure_change", "Infra change this quarter > 2 h/week TAM time", "P1"),
    ("churn_risk", "At risk of contraction or churn", "P1"),
    ("onboarding_window", "First 30-45 days of onboarding", "P1"),
    ("p1_exception", "P1 exception*", "P1"),
]


def _is_yes(answer) -> bool:
    if isinstance(answer, str):
        return answer.strip().lower() in {"yes", "true", "y", "1"}
    return bool(answer)


def us_enterprise_flowchart(trace: Sequence[dict], priority: int | None) -> SafeString:
    """The handbook's flowchart with the path the decision took highlighted.

    `trace` is the decision's list of steps ({"rule", "question", "answer", "evidence"});
    a step's rule id names a node, its answer the edge taken (Yes to the outcome, No down
    to the next question). `p2_exception` after P1 and `default_p2` (no rule fired) end
    at P2.
    """
    answers = {step.get("rule"): _is_yes(step.get("answer")) for step in trace}
    evidence = {step.get("rule"): str(step.get("evidence") or "") for step in trace}
    box_w, box_h, gap, x0, y0 = 360, 40, 26, 16, 16
    out_x = x0 + box_w + 90
    out_w = 120
    rows = len(US_ENTERPRISE_STEPS)
    height = y0 + rows * (box_h + gap) + 170
    width = out_x + out_w + 200
    body = [
        '<defs><marker id="fc-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="9" '
        'markerHeight="9" markerUnits="userSpaceOnUse" orient="auto-start-reverse">'
        '<path d="M0,0L10,5L0,10z" '
        f'fill="{MUTED}"/></marker><marker id="fc-arrow-on" viewBox="0 0 10 10" refX="9" '
        'refY="5" markerWidth="10" markerHeight="10" markerUnits="userSpaceOnUse" '
        'orient="auto-start-reverse">'
        f'<path d="M0,0L10,5L0,10z" fill="{ACCENT}"/></marker></defs>'
    ]

    def edge(x1, y1, x2, y2, on: bool, label: str = "", dashed: bool = False, lx=None, ly=None):
        colour = ACCENT if on else "#9aa3b2"
        marker = "fc-arrow-on" if on else "fc-arrow"
        dash = ' stroke-dasharray="5 4"' if dashed else ""
        cls = "fc-edge taken" if on else "fc-edge"
        parts = [
            f'<path class="{cls}" d="M{x1},{y1} L{x2},{y2}" stroke="{colour}" '
            f'stroke-width="{3 if on else 1.5}" fill="none"{dash} marker-end="url(#{marker})"/>'
        ]
        if label:
            parts.append(
                _text(
                    lx if lx is not None else (x1 + x2) / 2 + 4,
                    ly if ly is not None else (y1 + y2) / 2 - 4,
                    label,
                    size=11,
                    fill=ACCENT if on else MUTED,
                    weight="700" if on else "normal",
                )
            )
        return "".join(parts)

    def node(x, y, w, h, text, state: str, shape: str = "rect", sub: str = "") -> str:
        # state: "taken" (asked and on the path), "idle" (not reached)
        fill = {"taken": "#e8eafc", "idle": "#fff", "final": ACCENT}[state]
        stroke = {"taken": ACCENT, "idle": "#9aa3b2", "final": ACCENT}[state]
        ink = "#fff" if state == "final" else (INK if state == "taken" else MUTED)
        rx = h / 2 if shape == "pill" else 6
        sw = 1 if state == "idle" else 2
        parts = [
            f'<g class="fc-node fc-{state}"><rect x="{x}" y="{y}" width="{w}" height="{h}" '
            f'rx="{rx}" fill="{fill}" stroke="{stroke}" stroke-width="{sw}"/>',
            _text(
                x + w / 2,
                y + (h / 2 + 4 if not sub else h / 2 - 2),
                text,
                anchor="middle",
                size=12,
                fill=ink,
                weight="600" if state != "idle" else "normal",
            ),
        ]
        if sub:
            parts.append(
                _text(x + w / 2, y + h / 2 + 12, sub[:52], anchor="middle", size=10, fill=ink)
            )
        parts.append("</g>")
        return "".join(parts)

    final = {1: "P1", 2: "P2", 3: "P3", 4: "P4"}.get(priority or 0, "")
    # Questions down the left; Yes edges to the outcomes on the right.
    p1_rows = [i for i, s in enumerate(US_ENTERPRISE_STEPS) if s[2] == "P1"]
    p1_top = y0 + p1_rows[0] * (box_h + gap)
    p1_bottom = y0 + p1_rows[-1] * (box_h + gap) + box_h
    reached_p1 = False
    for i, (rule, text, outcome) in enumerate(US_ENTERPRISE_STEPS):
        y = y0 + i * (box_h + gap)
        asked = rule in answers
        yes = answers.get(rule, False)
        body.append(
            node(
                x0,
                y,
                box_w,
                box_h,
                text,
                "taken" if asked else "idle",
                sub=evidence.get(rule, "") if asked else "",
            )
        )
        cy = y + box_h / 2
        if outcome in ("P3", "P4"):
            body.append(edge(x0 + box_w, cy, out_x, cy, asked and yes, "Yes"))
            body.append(
                node(
                    out_x,
                    y,
                    out_w,
                    box_h,
                    outcome,
                    "final" if asked and yes and final == outcome else "idle",
                    shape="pill",
                )
            )
        else:
            body.append(edge(x0 + box_w, cy, out_x, cy, asked and yes, "Yes"))
            reached_p1 = reached_p1 or (asked and yes)
        if i < rows - 1:
            body.append(
                edge(
                    x0 + box_w / 2,
                    y + box_h,
                    x0 + box_w / 2,
                    y + box_h + gap,
                    asked and not yes,
                    "No",
                    lx=x0 + box_w / 2 + 6,
                    ly=y + box_h + 13,
                )
            )
    body.append(
        node(
            out_x,
            p1_top,
            out_w,
            p1_bottom - p1_top,
            "Priority 1",
            "final" if final == "P1" else ("taken" if reached_p1 else "idle"),
            shape="rect",
        )
    )
    # P1 -.-> P2 exception -- Yes --> P2 ; last question -- No --> P2
    ex_y = p1_bottom + 40
    p2_y = ex_y + box_h + 40
    p2_asked = "p2_exception" in answers
    p2_yes = answers.get("p2_exception", False)
    body.append(edge(out_x + out_w / 2, p1_bottom, out_x + out_w / 2, ex_y, p2_asked, dashed=True))
    body.append(
        node(
            out_x - 40,
            ex_y,
            out_w + 80,
            box_h,
            "P2 exception*",
            "taken" if p2_asked else "idle",
            sub=evidence.get("p2_exception", "") if p2_asked else "",
        )
    )
    last_y = y0 + (rows - 1) * (box_h + gap) + box_h
    default_taken = "default_p2" in answers or (
        answers.get("p1_exception") is False and final == "P2"
    )
    body.append(
        edge(
            x0 + box_w / 2,
            last_y,
            x0 + box_w / 2,
            p2_y,
            default_taken,
            "No",
            lx=x0 + box_w / 2 + 6,
            ly=last_y + 16,
        )
    )
    body.append(
        edge(out_x + out_w / 2, ex_y + box_h, x0 + box_w / 2 + 70, p2_y, p2_asked and p2_yes, "Yes")
    )
    body.append(
        node(
            x0 + box_w / 2 - 70,
            p2_y,
            140,
            box_h,
            "Priority 2",
            "final" if final == "P2" else "idle",
            shape="pill",
        )
    )
    body.append(
        _text(x0, height - 8, "* see priority exceptions in the handbook", size=10, fill=MUTED)
    )
    path = [s.get("rule") for s in trace]
    desc = (
        "US Enterprise prioritization flowchart. Path taken: "
        + " → ".join(f"{r} ({'yes' if answers.get(r) else 'no'})" for r in path if r)
        + (f"; result {final}." if final else ".")
    )
    return _svg(width, height, "How this priority was decided", desc, body, "chart-flowchart")
