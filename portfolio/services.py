"""Writes to the book of business (STYLE.md: `<entity>_<verb>`, keyword-only, typed)."""

from __future__ import annotations

import datetime as dt

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from portfolio.models import Account, Activity, ActivityKind


@transaction.atomic
def activity_log(
    *,
    account: Account,
    user: AbstractBaseUser | None,
    kind: str,
    occurred_at: dt.datetime,
    subject: str,
    body: str = "",
) -> Activity:
    """Add one entry to the account's timeline (a call, an email, a cadence call, ...).

    The caller has already checked that `user` may see `account`; the kind must be one of
    ActivityKind and the time aware, so a bad call fails here rather than in the database.
    """
    if kind not in ActivityKind.values:
        raise ValueError(f"Unknown activity kind: {kind!r}")
    if occurred_at.tzinfo is None:
        raise ValueError("occurred_at must be an aware datetime")
    subject = subject.strip()
    if not subject:
        raise ValueError("subject must not be empty")
    return Activity.objects.create(
        account=account,
        user=user,
        kind=kind,
        occurred_at=occurred_at,
        subject=subject,
        body=body.strip(),
    )
