"""Context for the triage panels other pages include, partials of the account's health page
(templates/triage/account_health.html):

    {% include "triage/account_health.html#health_panel" %}   the health colour panel
    {% include "triage/account_health.html#triage_panel" %}   the account's triage issue

with `context.update(triage.panels.account_panel_context(request, account))`.
"""

from __future__ import annotations

from django.http import HttpRequest

from portfolio.models import Account
from triage import selectors
from triage.forms import HealthColourForm, OpenIssueForm


def account_panel_context(
    request: HttpRequest,
    account: Account,
    *,
    health_form: HealthColourForm | None = None,
    open_issue_form: OpenIssueForm | None = None,
) -> dict:
    """Health panel + triage panel context for one (already scoped) account. 3 queries
    (the assessments, the issues with their last update, their teams)."""
    health = selectors.health_panel(account)
    if health_form is None:
        current = health["current"]
        health_form = HealthColourForm(
            initial={
                "colour": health["chosen"] or health["suggested"] or account.health or "green",
                "override_reason": current.override_reason if current else "",
                "override_expires_on": current.override_expires_on if current else None,
            }
        )
    triage = selectors.triage_panel(account)
    if open_issue_form is None:
        open_issue_form = OpenIssueForm(
            initial={"colour": account.health or "amber", "reason": _reasons_text(health)}
        )
    return {
        "account": account,
        "health": health,
        "health_form": health_form,
        "triage": triage,
        "open_issue_form": open_issue_form,
    }


def _reasons_text(health: dict) -> str:
    return "\n".join(f"* {r['colour'].title()}: {r['detail']}" for r in health["reasons"])
