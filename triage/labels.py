"""The Account Triage project's conventions as plain functions (no Django import):
labels, milestone (fiscal quarter), issue body and its idempotency marker.

Source: handbook/tam-account-triage.md, "Labels", "Issue Template"; DESIGN.md, GitLab.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass

# "Triage Labels for at risk (~red) accounts: ~E&A ~E&U ~U&A ~U&U"
CHURN_CLASSES: tuple[str, ...] = ("E&A", "E&U", "U&A", "U&U")
# "Every new issue will have the ~New label."
NEW_LABEL = "New"
# "Region Labels: ~US-WEST ~US-EAST ~EMEA ~APAC ~LATAM"
REGIONS: tuple[str, ...] = ("US-WEST", "US-EAST", "EMEA", "APAC", "LATAM")
COLOUR_LABELS: dict[str, str] = {
    "red": "Red",
    "amber": "Amber",
    "yellow": "Yellow",
    "green": "Green",
}
LABEL_COLOURS: dict[str, str] = {v: k for k, v in COLOUR_LABELS.items()}
# GitLab label colours (hex) for the labels Portfolio creates when missing.
LABEL_HEX: dict[str, str] = {
    "Red": "#dc3545",
    "Amber": "#fd7e14",
    "Yellow": "#ffc107",
    "Green": "#28a745",
    "New": "#428bca",
    **dict.fromkeys(CHURN_CLASSES, "#6c757d"),
    **dict.fromkeys(REGIONS, "#8e44ad"),
}
ALL_LABELS: tuple[str, ...] = (
    *COLOUR_LABELS.values(),
    NEW_LABEL,
    *CHURN_CLASSES,
    *REGIONS,
)
# Boards: "Use the "Colours" board as your main view"; "There is also a region board".
COLOURS_BOARD = "Colours"
REGION_BOARD = "Regions"
BOARD_LISTS: dict[str, tuple[str, ...]] = {
    COLOURS_BOARD: ("Red", "Amber", "Yellow", "Green"),
    REGION_BOARD: REGIONS,
}

MARKER_RE = re.compile(r"<!-- portfolio:triage-issue:(\d+) -->")


def fiscal_quarter(day: dt.date, *, fiscal_year_start_month: int) -> str:
    """The quarterly milestone a date falls in: "the milestone should be assigned to the
    quarterly milestone that the next contract renewal date falls on".

    The fiscal year is named after the calendar year it ends in (start month February:
    FY27 runs February 2026 - January 2027, so 2026-11-22 is FY27-Q4)."""
    start = fiscal_year_start_month
    offset = (day.month - start) % 12
    year = day.year if start == 1 or day.month < start else day.year + 1
    return f"FY{year % 100:02d}-Q{offset // 3 + 1}"


def fiscal_quarter_bounds(day: dt.date, *, fiscal_year_start_month: int) -> tuple[dt.date, dt.date]:
    """First and last day of the fiscal quarter containing `day` (milestone dates)."""
    offset = (day.month - fiscal_year_start_month) % 12
    first_month_index = day.month - 1 - offset % 3
    start = dt.date(day.year + first_month_index // 12, first_month_index % 12 + 1, 1)
    end_index = start.month - 1 + 3
    end = dt.date(start.year + end_index // 12, end_index % 12 + 1, 1) - dt.timedelta(days=1)
    return start, end


def issue_labels(*, colour: str, new: bool, churn_class: str, region: str | None) -> list[str]:
    """The labels of a triage issue: colour, ~New while unreviewed, churn class, region."""
    labels = [COLOUR_LABELS[colour]]
    if new:
        labels.append(NEW_LABEL)
    if churn_class:
        labels.append(churn_class)
    if region:
        labels.append(region)
    return labels


@dataclass(frozen=True)
class LabelState:
    """What a set of GitLab labels says about a triage issue."""

    colour: str | None
    new: bool
    churn_class: str


def read_labels(labels: Iterable[str]) -> LabelState:
    """Read the colour, ~New and churn class back from an issue's labels. With several
    colour labels (a board move that added one without removing the other) the riskiest
    wins."""
    names = set(labels)
    colours = [LABEL_COLOURS[n] for n in names if n in LABEL_COLOURS]
    order = ("red", "amber", "yellow", "green")
    colour = min(colours, key=order.index) if colours else None
    churn = next((c for c in CHURN_CLASSES if c in names), "")
    return LabelState(colour=colour, new=NEW_LABEL in names, churn_class=churn)


def marker(issue_id: int) -> str:
    """The idempotency marker in the GitLab issue body: a retried create looks it up
    before creating, so a second issue is never made."""
    return f"<!-- portfolio:triage-issue:{issue_id} -->"


def marker_id(body: str | None) -> int | None:
    match = MARKER_RE.search(body or "")
    return int(match.group(1)) if match else None


def issue_body(
    *,
    issue_id: int,
    salesforce_url: str,
    success_plan_url: str,
    renewal_date: dt.date | None,
    reason: str,
    team: Iterable[tuple[str, str]] = (),
) -> str:
    """The handbook's issue template: "Salesforce URL", "Customer Success Plan URL",
    "Contract Renewal Date", "Reason for Health Score"; then the triage team."""
    lines = [
        "**Salesforce URL**",
        "",
        salesforce_url or "_not known_",
        "",
        "**Customer Success Plan URL**",
        "",
        success_plan_url or "_no collaboration project yet_",
        "",
        "**Contract Renewal Date**",
        "",
        renewal_date.isoformat() if renewal_date else "_not known_",
        "",
        "**Reason for Health Score**",
        "",
        reason or "_to be written by the TAM_",
    ]
    team = list(team)
    if team:
        lines += ["", "**Triage team**", ""]
        lines += [f"* {role}: {name}" for role, name in team]
    lines += ["", marker(issue_id)]
    return "\n".join(lines)
