"""The new-customer and upgrade engagements and their checklists: start, tick, "not
needed", the TAM assignment (written back to Salesforce) and the "Welcome to GitLab" call.
`engagement_step_complete` is how the other sub-domains tick the step their work
completes (the project's steps, the move to post-sales)."""

from __future__ import annotations

import datetime as dt

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from engagement import rules
from engagement.models import (
    CollaborationProject,
    Engagement,
    EngagementKind,
    EngagementStage,
    EngagementStep,
)
from engagement.services._common import actor_name
from portfolio.models import Account, Activity, ActivityKind, WritebackOrigin
from portfolio.services import activity_log, salesforce_writeback_enqueue


@transaction.atomic
def engagement_start(*, account: Account, kind: str, user: User | None) -> Engagement:
    """Open a new-customer or upgrade engagement with the handbook's checklist.

    Steps that are already true are ticked at once (a TAM already in the Salesforce field,
    a collaboration project already there), recorded as done by the system."""
    if kind not in EngagementKind.values:
        raise ValidationError({"kind": f"Unknown engagement kind {kind!r}."})
    if Engagement.objects.filter(account=account, ended_at__isnull=True).exists():
        raise ValidationError("This account already has an open engagement.")
    now = timezone.now()
    project = CollaborationProject.objects.filter(account=account).first()
    has_project = project is not None and project.gitlab_id is not None
    engagement = Engagement.objects.create(
        account=account,
        kind=kind,
        started_by=user,
        started_at=now,
        stage=(
            EngagementStage.POST_SALES
            if kind == EngagementKind.UPGRADE or (project and project.in_post_sales)
            else EngagementStage.PRE_SALES
        ),
    )
    already = {
        "tam_assign": account.tam_id is not None,
        "sa_create_project": has_project,
        "confirm_project": has_project,
        "confirm_template": has_project,
        "move_post_sales": project is not None and project.in_post_sales,
    }
    EngagementStep.objects.bulk_create(
        EngagementStep(
            engagement=engagement,
            key=step.key,
            position=i,
            title=step.title,
            who=step.who,
            done_at=now if already.get(step.key) else None,
            note="Already done when the engagement started" if already.get(step.key) else "",
            may_be_not_needed=step.may_be_not_needed,
        )
        for i, step in enumerate(rules.steps_for(kind, account.segment), start=1)
    )
    return engagement


def engagement_step_set(*, step: EngagementStep, user: User | None, done: bool) -> EngagementStep:
    """Tick or untick one checklist step; who and when are recorded."""
    step.done_at = timezone.now() if done else None
    step.done_by = user if done else None
    step.note = ""
    step.not_needed = False
    step.save(update_fields=["done_at", "done_by", "note", "not_needed"])
    return step


# When the TAM decides a Commercial upgrade needs no customer project, there is no project
# whose template to verify either.
NOT_NEEDED_FOLLOWS: dict[str, str] = {"confirm_project": "confirm_template"}


@transaction.atomic
def engagement_step_not_needed(
    *, step: EngagementStep, user: User | None, note: str
) -> EngagementStep:
    """Complete a step the TAM decides as "not needed", with why.

    "For Commercial accounts, the TAM will determine if it is beneficial to have a
    customer project." (tam-account-engagement.md, Start a customer upgrade engagement):
    the Commercial upgrade's project step may be completed without a project; the step
    verifying the project's template is then not needed either."""
    if not step.may_be_not_needed:
        raise ValidationError("This step cannot be skipped: the handbook requires it.")
    note = note.strip()
    if not note:
        raise ValidationError({"note": "Say why it is not needed."})
    now = timezone.now()
    step.done_at, step.done_by, step.not_needed = now, user, True
    step.note = f"Not needed: {note}"[:255]
    step.save(update_fields=["done_at", "done_by", "not_needed", "note"])
    follows = NOT_NEEDED_FOLLOWS.get(step.key)
    if follows:
        EngagementStep.objects.filter(
            engagement_id=step.engagement_id, key=follows, done_at__isnull=True
        ).update(
            done_at=now,
            done_by=user,
            not_needed=True,
            note="Not needed: the TAM decided there is no customer project",
        )
    return step


def engagement_step_complete(
    *, account_id: int, key: str, user: User | None, note: str = ""
) -> None:
    """Tick `key` on the account's open engagement (if it has that step and it is open)."""
    EngagementStep.objects.filter(
        engagement__account_id=account_id,
        engagement__ended_at__isnull=True,
        key=key,
        done_at__isnull=True,
    ).update(done_at=timezone.now(), done_by=user, note=note[:255])


@transaction.atomic
def engagement_tam_assign(*, account: Account, tam: User, user: User | None) -> Account:
    """Assign the TAM from the engagement and write `Technical_Account_Manager__c` back.

    "After the Technical Account Manager has been aligned with the account, they will
    assign themselves to the “Technical Account Manager” field within Salesforce."
    (tam-account-engagement.md)"""
    changed = account.tam_id != tam.pk
    if changed:
        account.tam = tam
        account.save(update_fields=["tam", "updated_at"])
        activity_log(
            account=account,
            user=user,
            kind=ActivityKind.NOTE,
            occurred_at=timezone.now(),
            subject=f"TAM assigned: {tam.get_full_name() or tam.get_username()}",
        )
        salesforce_writeback_enqueue(
            account_ids=[account.pk],
            fields=["tam"],
            origin=WritebackOrigin.TAM_ASSIGNMENT,
            detail=f"Assigned from the engagement by {actor_name(user)}",
            user=user,
        )
    engagement_step_complete(account_id=account.pk, key="tam_assign", user=user)
    return account


@transaction.atomic
def engagement_welcome_call_record(
    *,
    engagement: Engagement,
    occurred_at: dt.datetime,
    user: User | None,
    notes: str = "",
) -> Activity:
    """Log the "Welcome to GitLab" call; the engagement is post-sales from then on.

    "Once the customer has paid, the Strategic Account Leader will set up the "Welcome to
    GitLab" call ... The "Welcome to GitLab" call will introduce the customer to the
    Technical Account Manager and begin the handover process." (tam-account-engagement.md)"""
    activity = activity_log(
        account=engagement.account,
        user=user,
        kind=ActivityKind.MEETING,
        occurred_at=occurred_at,
        subject="Welcome to GitLab call",
        body=notes,
    )
    engagement.welcome_call_at = occurred_at
    engagement.stage = EngagementStage.POST_SALES
    engagement.save(update_fields=["welcome_call_at", "stage"])
    engagement_step_complete(account_id=engagement.account_id, key="welcome_call", user=user)
    return activity
