"""Server-rendered SVG charts: no chart library, no script, so they work under a strict CSP
and in tests. Each chart is an `<svg role="img">` with a `<title>` and a `<desc>` giving
the figures in words, for screen readers. Colours are SVG presentation attributes (not
inline CSS, which the CSP forbids); the text colours meet WCAG AA contrast on white.

This module holds the palette and the primitives; the charts are drawn where they are
shown: `ui.charts` (dashboard, team view), `prioritization.charts` (the US Enterprise
flowchart), `usage.charts` (the usage trends).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from decimal import Decimal

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

# The health palette, in one place: static/css/portfolio.css declares the same values as
# custom properties (--health-<colour>, --health-<colour>-text, --health-<colour>-bg) and
# tests/unit/test_palette.py holds the two equal. Each colour has three tones:
# HEALTH_COLOURS, the colour itself (chart bars and swatches, the triage card's edge);
# HEALTH_TEXT, text in that colour (badges), WCAG AA (4.5:1) on HEALTH_BACKGROUNDS and on
# white, which is why yellow and amber are darker there than in a chart.
HEALTH_COLOURS = {"green": "#1f7a3a", "yellow": "#c9a100", "amber": "#d97706", "red": "#b42318"}
HEALTH_TEXT = {"green": "#1f7a3a", "yellow": "#6b5400", "amber": "#9a4508", "red": "#b42318"}
HEALTH_BACKGROUNDS = {"green": "#e5f4ea", "yellow": "#fdf6d8", "amber": "#fdebd8", "red": "#fde4e1"}
HEALTH_ORDER = ["green", "yellow", "amber", "red"]
INK, MUTED, GRID, ACCENT = "#1d2330", "#5b6474", "#d9dde4", "#3a3fb0"
_ids = itertools.count(1)


def svg(
    width: int, height: int, title: str, desc: str, body: Iterable[str], cls: str
) -> SafeString:
    n = next(_ids)
    return mark_safe(  # nosec B308, B703 # the SVG is built here from numbers and escaped text
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


def svg_text(
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
