"""Disengagement: recorded with the options reviewed, the open engagement ended, the TAM
unassigned and written back to Salesforce."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from engagement.models import Disengagement, Engagement
from engagement.services._common import actor_name
from portfolio.models import Account, ActivityKind, WritebackOrigin
from portfolio.services import activity_log, salesforce_writeback_enqueue


@transaction.atomic
def disengagement_record(
    *,
    account: Account,
    user: User | None,
    reason: str,
    reason_detail: str,
    met_with_account_executive: bool,
    option_support: bool,
    option_written_howto: bool,
    option_features_lost: str,
    option_self_serve: bool,
    follow_up_summary: str,
) -> Disengagement:
    """Record a disengagement, end the open engagement, unassign the TAM and write it back.

    "When this happens, it is important to manage the disengagement so that the customer
    understands the reason, and is clear on who they should communicate with going
    forward." Options to review: Support; complex how-to "sent in writing to the SAL/AE";
    "If disengagement is due to the customer downgrading/churning, identify the features
    they will lose access to"; online self-serve resources. "Send a follow-up that
    summarizes what was discussed, including their assistance options."
    (tam-account-engagement.md)"""
    errors: dict[str, str] = {}
    if reason in ("downgrade", "churn") and not option_features_lost.strip():
        errors["option_features_lost"] = (
            "The customer is downgrading or churning: list the features they will lose."
        )
    if not follow_up_summary.strip():
        errors["follow_up_summary"] = "Write the follow-up summary sent to the customer."
    if errors:
        raise ValidationError(errors)
    engagement = Engagement.objects.filter(account=account, ended_at__isnull=True).first()
    now = timezone.now()
    record = Disengagement.objects.create(
        account=account,
        engagement=engagement,
        reason=reason,
        reason_detail=reason_detail.strip(),
        met_with_account_executive=met_with_account_executive,
        option_support=option_support,
        option_written_howto=option_written_howto,
        option_features_lost=option_features_lost.strip(),
        option_self_serve=option_self_serve,
        follow_up_summary=follow_up_summary.strip(),
        previous_tam_id=account.tam_id,
        recorded_by=user,
        recorded_at=now,
    )
    if engagement is not None:
        engagement.ended_at = now
        engagement.save(update_fields=["ended_at"])
    activity_log(
        account=account,
        user=user,
        kind=ActivityKind.NOTE,
        occurred_at=now,
        subject=f"Disengaged: {record.get_reason_display()}",
        body=follow_up_summary,
    )
    if account.tam_id is not None:
        account.tam = None
        account.save(update_fields=["tam", "updated_at"])
        salesforce_writeback_enqueue(
            account_ids=[account.pk],
            fields=["tam"],
            origin=WritebackOrigin.TAM_ASSIGNMENT,
            detail=f"Disengaged ({record.get_reason_display()}) by {actor_name(user)}",
            user=user,
        )
    return record
