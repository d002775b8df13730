"""Writes of the workspace: an inbox item done or snoozed, a saved view kept or dropped."""

from __future__ import annotations

import datetime as dt

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from workspace.models import InboxItemState, SavedView

SNOOZE_MAX_DAYS = 366


@transaction.atomic
def inbox_item_done(*, user: User, key: str) -> InboxItemState:
    """Mark the occurrence named by `key` done for this user (it leaves the inbox; the
    next occurrence has another key). Drops the user's snoozes that have run out."""
    _prune(user)
    now = timezone.now()
    state, _ = InboxItemState.objects.update_or_create(
        user=user, key=key, defaults={"done_at": now, "snoozed_until": None, "updated_at": now}
    )
    return state


@transaction.atomic
def inbox_item_snooze(*, user: User, key: str, until: dt.date) -> InboxItemState:
    """Hide the item until `until` (a day after today, within a year)."""
    today = timezone.localdate()
    if until <= today:
        raise ValidationError({"until": "Snooze to a day after today."})
    if until > today + dt.timedelta(days=SNOOZE_MAX_DAYS):
        raise ValidationError({"until": "Snooze for a year at most."})
    _prune(user)
    state, _ = InboxItemState.objects.update_or_create(
        user=user,
        key=key,
        defaults={"done_at": None, "snoozed_until": until, "updated_at": timezone.now()},
    )
    return state


def _prune(user: User) -> None:
    """Snoozes that ran out say nothing any more; done states older than a year name
    occurrences long gone. Keeps the states a user holds bounded."""
    today = timezone.localdate()
    InboxItemState.objects.filter(user=user).filter(
        Q(done_at__isnull=True, snoozed_until__lte=today)
        | Q(done_at__lt=timezone.now() - dt.timedelta(days=SNOOZE_MAX_DAYS))
    ).delete()


def saved_view_save(*, owner: User, name: str, querystring: str, shared: bool = False) -> SavedView:
    """Keep the accounts table's state (its query string) under a name; saving again under
    the same name replaces it."""
    view, _ = SavedView.objects.update_or_create(
        owner=owner, name=name, defaults={"querystring": querystring, "shared": shared}
    )
    return view


def saved_view_delete(*, view: SavedView) -> None:
    view.delete()
