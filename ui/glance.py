"""The account page at a glance (issue 15.7): the summary header and the table of contents.

Everything here is read from what the page has already loaded (the account with its
cadence annotation, the priority and health panels, the timeline, the exceptions): no
query of its own, so the page's query count stays what it was.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from portfolio.models import Account, ActivityKind

# Activities that are a contact with the customer (a note or a reassignment is not).
CONTACT_KINDS = {
    ActivityKind.CALL,
    ActivityKind.EMAIL,
    ActivityKind.MEETING,
    ActivityKind.CADENCE_CALL,
    ActivityKind.EBR,
    ActivityKind.WORKSHOP,
}
HEALTH_WORST_FIRST = {"red": 0, "amber": 1, "yellow": 2, "green": 3}


def sections(account: Account) -> list[tuple[str, str]]:
    """The page's sections in order: (anchor, label). The anchors are the panels' own
    headings (the health and triage panels' carry the account's id)."""
    return [
        ("timeline", "Timeline"),
        ("facts-h", "Salesforce facts"),
        (f"health-h-{account.pk}", "Health"),
        ("priority-h", "Priority"),
        (f"triage-h-{account.pk}", "Triage"),
        ("deals-h", "Open opportunities"),
        ("usage", "Product usage"),
        ("engagement", "Engagement"),
    ]


@dataclass(frozen=True)
class Due:
    label: str
    on: dt.date
    anchor: str


def next_due(account: Account, *, exceptions: list, today: dt.date) -> Due | None:
    """The soonest of: the next cadence call (last one held + the expected cadence; today
    when none was ever held), an approved priority exception's expiry, the renewal."""
    items: list[Due] = []
    cadence_days = getattr(account, "cadence_days", None)
    if cadence_days:
        last = getattr(account, "last_cadence_at", None)
        on = (last.date() + dt.timedelta(days=cadence_days)) if last else today
        items.append(Due("Cadence call", on, "engagement"))
    for exc in exceptions:
        if exc.status == "approved" and exc.expires_on:
            label = f"P{exc.requested_priority} exception expires"
            items.append(Due(label, exc.expires_on, "priority-h"))
    if account.renewal_date and account.renewal_date >= today:
        items.append(Due("Renewal", account.renewal_date, "facts-h"))
    return min(items, key=lambda d: d.on) if items else None


def last_contact(timeline: list) -> object | None:
    """The latest customer contact among the timeline's entries (newest first)."""
    return next((a for a in timeline if a.kind in CONTACT_KINDS), None)


def health_why(health: dict) -> str:
    """The TAM's reason when they chose the colour, else the worst signals' details."""
    current = health.get("current")
    reason: str = getattr(current, "override_reason", "") if current is not None else ""
    if reason:
        return reason
    reasons = sorted(
        health.get("reasons") or [], key=lambda r: HEALTH_WORST_FIRST.get(r.get("colour"), 9)
    )
    return "; ".join(r.get("detail", "") for r in reasons[:2])


def priority_why(flow: list) -> str:
    """The evidence of the deciding question."""
    step = next((s for s in flow if s.decisive), None)
    if step is None:
        return ""
    return step.evidence or step.question


def account_summary(account: Account, context: dict) -> dict:
    """Context of the summary header, from the page's context."""
    today = context.get("today") or dt.date.today()
    return {
        "glance_due": next_due(account, exceptions=context.get("exceptions") or [], today=today),
        "glance_contact": last_contact(context.get("timeline") or []),
        "glance_health_why": health_why(context.get("health") or {}),
        "glance_priority_why": priority_why(context.get("flow") or []),
        "sections": sections(account),
    }
