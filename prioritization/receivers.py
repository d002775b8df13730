"""prioritization's answers to the core's signals (portfolio/signals.py)."""

from __future__ import annotations

from integrations.enqueue import enqueue_on_commit
from prioritization.models import ReviewCause
from prioritization.tasks import reevaluate_accounts


def prioritise_new_accounts(sender, *, account_ids: list[int], **kwargs) -> None:
    """Accounts the sync just created have no priority yet: evaluate them now rather than
    at the next quarterly review (a new customer in onboarding is P1 from day one). Known
    accounts keep theirs until the quarterly review, as the handbook asks ("reviewed and
    updated quarterly")."""
    if account_ids:
        enqueue_on_commit(reevaluate_accounts, list(account_ids), cause=ReviewCause.SYNC)
