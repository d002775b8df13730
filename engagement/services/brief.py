"""The TAM's part of the E-Group call brief."""

from __future__ import annotations

from django.contrib.auth.models import User

from engagement.models import EGroupBrief
from portfolio.models import Account


def egroup_brief_save(*, account: Account, user: User | None, data: dict) -> EGroupBrief:
    """Save the TAM's part of the E-Group call brief (the five W's, outcomes, agenda)."""
    fields = [f for f in data if f in EGROUP_FIELDS]
    brief, _ = EGroupBrief.objects.update_or_create(
        account=account, defaults={**{f: data[f] for f in fields}, "updated_by": user}
    )
    return brief


# The brief's fields the TAM edits; `engagement.forms.EGroupBriefForm` shows the same.
EGROUP_FIELDS = (
    "egroup_member",
    "who",
    "what",
    "where",
    "when",
    "why",
    "gitlab_outcome",
    "customer_outcome",
    "asks",
    "agenda",
    "topics",
    "links",
)
