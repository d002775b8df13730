"""One health palette (issue 17.8): the stylesheet's custom properties are the values of
`portfolio.charts` (the SVG charts' source), the health rules of every stylesheet use the
properties rather than their own hex values, and badge text keeps WCAG AA. No database."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from portfolio.charts import HEALTH_BACKGROUNDS, HEALTH_COLOURS, HEALTH_ORDER, HEALTH_TEXT
from ui.charts import health_mix_over_time

CSS = Path(__file__).resolve().parents[2] / "static" / "css"
TONES = {"": HEALTH_COLOURS, "-text": HEALTH_TEXT, "-bg": HEALTH_BACKGROUNDS}


def _root_properties() -> dict[str, str]:
    css = (CSS / "portfolio.css").read_text()
    root = re.search(r":root\s*\{(.*?)\}", css, re.S)
    assert root, "portfolio.css has no :root block"
    return {
        name: value.lower()
        for name, value in re.findall(r"(--health-[a-z-]+)\s*:\s*(#[0-9a-fA-F]{6})\s*;", root[1])
    }


def _luminance(hex_colour: str) -> float:
    def channel(c: int) -> float:
        s = c / 255
        return s / 12.92 if s <= 0.03928 else ((s + 0.055) / 1.055) ** 2.4

    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast(a: str, b: str) -> float:
    hi, lo = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_the_stylesheet_declares_the_charts_palette():
    expected = {
        f"--health-{colour}{suffix}": tones[colour].lower()
        for suffix, tones in TONES.items()
        for colour in HEALTH_ORDER
    }
    assert _root_properties() == expected


@pytest.mark.parametrize("sheet", sorted(p.name for p in CSS.glob("*.css")))
def test_health_rules_use_the_palette_not_their_own_colours(sheet):
    css = (CSS / sheet).read_text()
    css = re.sub(r":root\s*\{.*?\}", "", css, flags=re.S)
    for selector, body in re.findall(r"([^{}]+)\{([^{}]*)\}", css):
        if re.search(r"\.health-(green|yellow|amber|red)\b", selector):
            assert not re.search(r"#[0-9a-fA-F]{3,8}\b|rgb|hsl", body), (sheet, selector, body)


@pytest.mark.parametrize("colour", HEALTH_ORDER)
def test_badge_text_meets_wcag_aa(colour):
    assert contrast(HEALTH_TEXT[colour], HEALTH_BACKGROUNDS[colour]) >= 4.5
    assert contrast(HEALTH_TEXT[colour], "#ffffff") >= 4.5


def test_the_health_chart_draws_in_the_palette():
    chart = health_mix_over_time([("Now", {"green": 1, "yellow": 1, "amber": 1, "red": 1})])
    fills = set(re.findall(r'fill="(#[0-9a-fA-F]{6})"', chart))
    assert set(HEALTH_COLOURS.values()) <= fills
    assert fills - set(HEALTH_COLOURS.values()) <= {"#1d2330", "#5b6474"}  # ink, muted text
