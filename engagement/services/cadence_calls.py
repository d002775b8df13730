"""Cadence calls and EBRs logged on the account's timeline with their outcome."""

from __future__ import annotations

import datetime as dt

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError

from portfolio.models import Account, Activity, ActivityKind, CallOutcome
from portfolio.services import activity_log

CADENCE_KINDS = (ActivityKind.CADENCE_CALL, ActivityKind.EBR)


def cadence_log(
    *,
    account: Account,
    kind: str,
    occurred_at: dt.datetime,
    subject: str,
    body: str,
    user: User | None,
    outcome: str = CallOutcome.HELD,
) -> Activity:
    """Log a cadence call or an EBR on the account's timeline with what happened to it
    (held, held but the customer was late, missed, rescheduled): cadence attendance is
    read from these outcomes only ("Frequently don't show up or are late to scheduled
    cadence calls", tam-account-triage.md), and only a held call counts as the cadence."""
    if kind not in CADENCE_KINDS:
        raise ValidationError({"kind": "Log a cadence call or an EBR here."})
    if outcome not in CallOutcome.values:
        raise ValidationError({"outcome": "Say whether the call was held, missed or moved."})
    return activity_log(
        account=account,
        user=user,
        kind=kind,
        occurred_at=occurred_at,
        subject=subject,
        body=body,
        outcome=outcome,
    )
