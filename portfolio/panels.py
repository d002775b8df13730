"""What the portfolio pages show from the other apps (prioritization, triage, engagement,
Salesforce history). Each function degrades to "nothing yet" when the app has no data
to offer, and runs a fixed number of queries whatever the size of the book.
"""

from __future__ import annotations

import datetime as dt

from django.db.models import QuerySet
from django.http import HttpRequest

from portfolio.models import Account, Health

# "Target about 1/3 of a book at P1" (DESIGN.md, us_enterprise; the handbook's
# "approximately one-third of a TAM's book" guidance).
DEFAULT_P1_TARGET_SHARE = 1 / 3


def p1_target_share(accounts: QuerySet[Account]) -> float | None:
    """The share of a book the priority model aims to have at P1."""
    return DEFAULT_P1_TARGET_SHARE


def health_mix_series(
    accounts: QuerySet[Account], *, figures: dict, today: dt.date
) -> list[tuple[str, dict[str, int]]]:
    """Health mix per month from the history when there is one, else today's mix."""
    return [("Today", {c.value: figures[c.value] for c in Health})]


def changes_since(accounts: QuerySet[Account], *, since: dt.datetime | None) -> list[dict]:
    """Priority and health changes of the book since `since` (newest first)."""
    return []


def open_triage_count(accounts: QuerySet[Account]) -> int | None:
    """Open triage issues of the book; None when triage is not available."""
    return None


def account_panels(request: HttpRequest, account: Account) -> dict:
    """Context for the account page's priority, health, triage and engagement panels."""
    return {}


def team_panels(request: HttpRequest) -> dict:
    """Context for the team view's pending approvals."""
    return {}
