"""Writes to the book of business (STYLE.md: `<entity>_<verb>`, keyword-only, typed)."""

from __future__ import annotations

import datetime as dt
import logging

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from integrations.enqueue import broker_require, enqueue_on_commit
from portfolio import tasks, writeback
from portfolio.models import Account, Activity, ActivityKind, WritebackOrigin

logger = logging.getLogger(__name__)


@transaction.atomic
def activity_log(
    *,
    account: Account,
    user: User | None,
    kind: str,
    occurred_at: dt.datetime,
    subject: str,
    body: str = "",
    outcome: str = "",
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
        outcome=outcome,
    )


# --- Salesforce write-back ---------------------------------------------------------------
# "Written back: Technical_Account_Manager__c, Health_Score__c, CSM_Priority__c" (DESIGN.md);
# the engine is portfolio/writeback.py.


# Every service that changes `Account.tam`, `Account.health` or `Account.priority` calls
# this, naming only the fields it changed and the origin (`portfolio.models.WritebackOrigin`);
# the write-back runs after commit. See `portfolio.writeback.writeback_record`.
salesforce_writeback_enqueue = writeback.writeback_record


def salesforce_sync_enqueue(*, full: bool = False) -> None:
    """Start a Salesforce sync in the background after the current transaction commits.
    Raises `integrations.enqueue.BrokerUnavailable` (a 503 for the user) when Redis does
    not answer; a send that fails after that is logged, and the schedule runs the sync."""
    broker_require(
        message="Portfolio's task queue (Redis) is not answering, so the Salesforce sync "
        "could not be started. The scheduled sync runs once Redis is back."
    )
    enqueue_on_commit(tasks.sync_salesforce, full=full, trigger="manual")


@transaction.atomic
def account_tam_bulk_assign(*, account_ids: list[int], tam: User, user: User) -> list[int]:
    """Reassign the TAM of many accounts at once (a manager's bulk action) and write
    `Technical_Account_Manager__c` back to Salesforce under the write-back rules (the
    brake holds a sweep that changes too large a share of the accounts).

    "After the Technical Account Manager has been aligned with the account, they will
    assign themselves to the “Technical Account Manager” field within Salesforce."
    (tam-account-engagement.md) — a reassignment in Portfolio tells Salesforce for them.

    Set-based: one UPDATE (the history trigger records each account's change, with the
    request's user), one INSERT of timeline notes, one write-back record per field. The
    caller has checked that `user` may change every account and assign `tam`. Returns the
    ids whose TAM changed (an account already with `tam` is left alone)."""
    now = timezone.now()
    changed = list(
        Account.objects.filter(pk__in=account_ids)
        .exclude(tam=tam)
        .select_for_update()
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    if not changed:
        return []
    Account.objects.filter(pk__in=changed).update(tam=tam, updated_at=now)
    name = tam.get_full_name() or tam.get_username()
    Activity.objects.bulk_create(
        Activity(
            account_id=pk,
            user=user,
            kind=ActivityKind.NOTE,
            occurred_at=now,
            subject=f"TAM reassigned: {name} (bulk action)",
        )
        for pk in changed
    )
    salesforce_writeback_enqueue(
        account_ids=changed,
        fields=["tam"],
        origin=WritebackOrigin.TAM_ASSIGNMENT,
        detail=f"Reassigned in bulk by {user.get_username()}",
        user=user,
    )
    return changed
