"""Writes to the book of business (STYLE.md: `<entity>_<verb>`, keyword-only, typed)."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import F, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce

from portfolio.models import Account, Activity, ActivityKind, SalesforceUser

logger = logging.getLogger(__name__)


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


# --- Salesforce write-back ---------------------------------------------------------------
# "Written back: Technical_Account_Manager__c, Health_Score__c, CSM_Priority__c" (DESIGN.md).


def salesforce_writeback_enqueue(*, account_ids: list[int]) -> None:
    """Push the TAM, health colour and priority of these accounts to Salesforce, after commit.

    Call this from any service that changed `Account.tam`, `Account.health` or
    `Account.priority` (inside or outside a transaction): when the surrounding transaction
    commits, the Celery task `portfolio.salesforce_writeback` is enqueued with the ids. The
    task compares each account with the values Salesforce last had (kept on the account:
    `salesforce_tam_id`, `salesforce_health`, `salesforce_priority`) and PATCHes only the
    fields that differ, so calling this twice, or for an unchanged account, sends nothing.
    A rolled-back transaction enqueues nothing. When Salesforce is not configured
    (`SALESFORCE_ENABLED` is False) nothing is enqueued.

    In tests, run the push in-process with `salesforce_writeback_push(account_ids=...)`
    against the `fake_salesforce` fixture (tests/fakes/salesforce.py).
    """
    ids = sorted({int(pk) for pk in account_ids})
    if not ids or not settings.SALESFORCE_ENABLED:
        return

    def _send() -> None:
        from portfolio.tasks import salesforce_writeback

        salesforce_writeback.delay(account_ids=ids)

    transaction.on_commit(_send)


@dataclass
class WritebackResult:
    """What one write-back pass did."""

    pushed: int = 0
    in_sync: int = 0
    failed: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        text = f"{self.pushed} account(s) pushed to Salesforce, {self.in_sync} already in sync"
        if self.failed:
            text += f", {len(self.failed)} failed"
        return text


def _health_to_salesforce(health: str) -> str | None:
    return health.capitalize() if health else None


def salesforce_writeback_pending() -> QuerySet[Account]:
    """Accounts whose TAM, health or priority differs from what Salesforce last had.

    A TAM with no Salesforce user cannot be expressed in Salesforce, so such an account
    is pending only for its health or priority.
    """
    tam_sf_id = Subquery(
        SalesforceUser.objects.filter(user_id=OuterRef("tam_id"))
        .order_by("pk")
        .values("salesforce_id")[:1]
    )
    return (
        Account.objects.annotate(desired_tam_sf_id=Coalesce(tam_sf_id, Value("")))
        .filter(
            Q(~Q(health=F("salesforce_health")))
            | Q(priority__isnull=True, salesforce_priority__isnull=False)
            | Q(priority__isnull=False, salesforce_priority__isnull=True)
            # < or > rather than NOT =, which Django widens with IS NOT NULL checks that
            # make two NULLs look different.
            | Q(priority__lt=F("salesforce_priority"))
            | Q(priority__gt=F("salesforce_priority"))
            | (Q(tam__isnull=True) & ~Q(salesforce_tam_id=""))
            | (
                Q(tam__isnull=False)
                & ~Q(desired_tam_sf_id="")
                & ~Q(desired_tam_sf_id=F("salesforce_tam_id"))
            )
        )
        .exclude(salesforce_id="")
    )


def salesforce_writeback_push(*, account_ids: list[int] | None = None) -> WritebackResult:
    """PATCH `Technical_Account_Manager__c`, `Health_Score__c`, `CSM_Priority__c` of these
    accounts (or of every pending account when `account_ids` is None: the periodic sweep)
    where Portfolio's value differs from what Salesforce last had.

    Idempotent: only differing fields are sent, and after each successful PATCH the sent
    values are recorded as Salesforce's (`salesforce_tam_id`, `salesforce_health`,
    `salesforce_priority`), so a retried task sends nothing twice. Transient failures are
    retried by integrations.salesforce's policy; a record Salesforce refuses (400/404) is
    reported and the others are still pushed.
    """
    from integrations import salesforce

    names = settings.SALESFORCE_FIELDS
    result = WritebackResult()
    pending = salesforce_writeback_pending()
    if account_ids is not None:
        ids = sorted({int(pk) for pk in account_ids})
        pending = pending.filter(pk__in=ids)
    accounts = list(pending.order_by("pk"))
    if account_ids is not None:
        result.in_sync = len(ids) - len(accounts)
    if not accounts:
        return result

    client = salesforce.client()
    pushed: list[Account] = []
    try:
        for account in accounts:
            changes: dict[str, object] = {}
            desired_tam = account.desired_tam_sf_id  # type: ignore[attr-defined]
            if account.tam_id is None and account.salesforce_tam_id:
                changes[names["account_tam"]] = None
                account.salesforce_tam_id = ""
            elif account.tam_id is not None and desired_tam != account.salesforce_tam_id:
                changes[names["account_tam"]] = desired_tam
                account.salesforce_tam_id = desired_tam
            elif account.tam_id is not None and not desired_tam:
                result.notes.append(f"{account.salesforce_id}: TAM has no Salesforce user")
            if account.health != account.salesforce_health:
                changes[names["account_health"]] = _health_to_salesforce(account.health)
                account.salesforce_health = account.health
            if account.priority != account.salesforce_priority:
                changes[names["account_priority"]] = account.priority
                account.salesforce_priority = account.priority
            if not changes:
                result.in_sync += 1
                continue
            try:
                client.update_account(account.salesforce_id, changes)
            except salesforce.REFUSED as exc:
                logger.warning(
                    "Salesforce refused the write-back of %s: %s", account.salesforce_id, exc
                )
                result.failed.append(account.salesforce_id)
                continue
            pushed.append(account)
    finally:
        # Record what was sent even if a later account failed for good, so a retry of the
        # task resends nothing that Salesforce already has.
        if pushed:
            Account.objects.bulk_update(
                pushed, ["salesforce_tam_id", "salesforce_health", "salesforce_priority"]
            )
        result.pushed = len(pushed)
    logger.info("Salesforce write-back: %s", result.summary())
    return result


def salesforce_sync_enqueue(*, full: bool = False) -> None:
    """Start a Salesforce sync in the background after the current transaction commits."""

    def _send() -> None:
        from portfolio.tasks import sync_salesforce

        sync_salesforce.delay(full=full, trigger="manual")

    transaction.on_commit(_send)
