"""Reads of notifications. A user sees only their own (`for_user`), of the kinds they
want in the app, from the last 90 days; every list is bounded."""

from __future__ import annotations

import datetime as dt

from django.contrib.auth.models import User
from django.db.models import QuerySet
from django.utils import timezone

from notifications.models import Channel, Notification
from notifications.preferences import enabled_kinds
from notifications.producer import RETENTION_DAYS

BELL_CAP = 99
DROPDOWN_LIMIT = 8
PAGE_SIZE = 50


def for_user(user: User) -> QuerySet[Notification]:
    """The user's own notifications shown in the app (one query for their preferences
    when evaluated: the kinds are read here)."""
    since = timezone.now() - dt.timedelta(days=RETENTION_DAYS)
    return Notification.objects.filter(
        user=user, kind__in=sorted(enabled_kinds(user, Channel.IN_APP)), created_at__gte=since
    ).order_by("-created_at", "-id")


def bell(user: User) -> dict:
    """The header's bell: unread count, capped (two queries: preferences, count)."""
    unread = for_user(user).filter(read_at__isnull=True)[: BELL_CAP + 1].count()
    return {"unread": unread, "over": unread > BELL_CAP, "shown": min(unread, BELL_CAP)}
