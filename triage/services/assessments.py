"""Health assessments: the TAM's signals, the automatic run that suggests a colour for
every account, and the TAM's confirmation or override ("a mix of art and science"). A
change of the effective colour is written back to Salesforce and drives the triage
lifecycle (`triage.services.issues`): red opens an issue, recovery closes it. The signals
themselves are read by `triage.selectors.signals_with_sources`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from decimal import Decimal

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from portfolio.models import Account, Health, WritebackOrigin
from portfolio.services import salesforce_writeback_enqueue
from triage import health, selectors
from triage.models import (
    AssessmentSource,
    EventSource,
    HealthAssessment,
    HealthSignals,
    IssueStatus,
    TriageIssue,
)
from triage.selectors import TAM_SIGNAL_FIELDS
from triage.services import issues

BATCH_SIZE = 500


@transaction.atomic
def health_signals_update(*, account: Account, user: User | None, values: dict) -> HealthSignals:
    """Store the TAM's signals for an account and re-assess it (the TAM's chosen colour,
    if any, is kept; the new suggestion is stored beside it)."""
    unknown = set(values) - set(TAM_SIGNAL_FIELDS)
    if unknown:
        raise ValueError(f"Not TAM signals: {', '.join(sorted(unknown))}")
    row, _ = HealthSignals.objects.get_or_create(account=account)
    for name, value in values.items():
        setattr(row, name, "" if value is None and name in health.ENUMS else value)
    row.updated_by = user
    row.save(update_fields=[*values, "updated_by", "updated_at"])
    health_assess(account_ids=[account.pk])
    return row


@dataclass
class AssessSummary:
    assessed: int = 0
    changed_suggestion: int = 0
    changed_colour: int = 0
    overrides_expired: int = 0
    unchanged: int = 0


def _effective(assessment: HealthAssessment, today: dt.date) -> str:
    if assessment.chosen_colour and not _expired(assessment, today):
        return assessment.chosen_colour
    return assessment.suggested_colour


def _expired(assessment: HealthAssessment, today: dt.date) -> bool:
    return bool(assessment.override_expires_on and assessment.override_expires_on < today)


def health_assess(
    *, account_ids: Sequence[int] | None = None, now: dt.datetime | None = None
) -> AssessSummary:
    """The automatic run: suggest a colour for every account (or `account_ids`).

    A new assessment row is written only when the suggestion changed or an override
    expired; the TAM's chosen colour is carried over, never replaced ("an automatic run
    never overwrites the TAM's colour; it shows the difference"). Account.health gets the
    effective colour; a change is written back to Salesforce and drives the triage
    lifecycle (red opens an issue, recovery closes it). Set-based per batch of 500."""
    now = now or timezone.now()
    summary = AssessSummary()
    ids_qs = Account.objects.order_by("pk").values_list("pk", flat=True)
    if account_ids is not None:
        ids_qs = ids_qs.filter(pk__in=list(account_ids))
    ids = list(ids_qs)
    for start in range(0, len(ids), BATCH_SIZE):
        _assess_batch(ids[start : start + BATCH_SIZE], now=now, summary=summary)
    return summary


@transaction.atomic
def _assess_batch(ids: list[int], *, now: dt.datetime, summary: AssessSummary) -> None:
    today = timezone.localdate(now)
    accounts = list(
        Account.objects.filter(pk__in=ids).select_related("tam").select_for_update(of=("self",))
    )
    with_sources = selectors.signals_with_sources(accounts, now=now)
    current = selectors.current_assessments(ids)
    retire: list[HealthAssessment] = []
    refresh: list[HealthAssessment] = []
    create: list[HealthAssessment] = []
    changed: list[tuple[Account, str, str]] = []
    for account in accounts:
        account_signals, sources = with_sources[account.pk]
        result = health.evaluate(account_signals, sources=sources)
        suggested = result.colour or ""
        old = current.get(account.pk)
        summary.assessed += 1
        expired = old is not None and old.chosen_colour and _expired(old, today)
        if old is not None and old.suggested_colour == suggested and not expired:
            summary.unchanged += 1
            # Same colour, other reasons (e.g. usage data now answers what the TAM did):
            # the current row's explanation is refreshed in place, no new history row.
            reasons = result.as_dict()["reasons"]
            if old.reasons != reasons:
                old.reasons, old.signals = reasons, asdict(account_signals)
                old.score = None if result.score is None else Decimal(str(result.score))
                refresh.append(old)
            continue
        keep_choice = old is not None and old.chosen_colour and not expired
        row = HealthAssessment(
            account=account,
            created_at=now,
            source=AssessmentSource.AUTOMATIC,
            suggested_colour=suggested,
            score=None if result.score is None else Decimal(str(result.score)),
            reasons=result.as_dict()["reasons"],
            signals=asdict(account_signals),
            previous_colour=account.health,
            note="Override expired" if expired else "",
        )
        if old is not None and keep_choice:
            row.chosen_colour = old.chosen_colour
            row.chosen_by_id = old.chosen_by_id
            row.chosen_at = old.chosen_at
            row.override_reason = old.override_reason or _confirmation_reason(old, suggested)
            row.override_expires_on = old.override_expires_on
        # No signal known and no choice: nothing to say, the colour on record stands
        # (e.g. the one Salesforce had); unknown never blanks a colour.
        row.colour = _effective(row, today) or account.health
        if old is not None:
            old.is_current = False
            retire.append(old)
            summary.changed_suggestion += old.suggested_colour != suggested
        else:
            summary.changed_suggestion += 1
        summary.overrides_expired += bool(expired)
        create.append(row)
        if row.colour != account.health:
            changed.append((account, account.health, row.colour))
    HealthAssessment.objects.bulk_update(retire, ["is_current"])
    HealthAssessment.objects.bulk_update(refresh, ["reasons", "signals", "score"])
    HealthAssessment.objects.bulk_create(create)
    _accounts_recolour(changed, actor=None, reason="", source=EventSource.AUTOMATIC)
    summary.changed_colour += len(changed)


def _confirmation_reason(old: HealthAssessment, suggested: str) -> str:
    """The reason a kept choice carries once the suggestion moves away from it. A TAM who
    confirmed Portfolio's suggestion gave no reason (none is asked for agreeing); when new
    data suggests another colour, the TAM's colour still stands ("never silently
    overwritten", DESIGN.md) and now differs, so it says what it was."""
    if not suggested or suggested == old.chosen_colour:
        return ""
    when = old.chosen_at.date().isoformat() if old.chosen_at else "earlier"
    return (
        f"{old.chosen_colour.capitalize()} confirmed on {when}, when Portfolio suggested the "
        f"same; Portfolio now suggests {suggested}."
    )


@transaction.atomic
def health_colour_set(
    *,
    account: Account,
    user: User | None,
    colour: str,
    reason: str = "",
    expires_on: dt.date | None = None,
    source: str = AssessmentSource.TAM,
) -> HealthAssessment:
    """The TAM confirms or overrides the suggested colour ("a mix of art and science").

    An override (a colour other than the suggestion) needs a reason; it may carry an
    expiry date after which the automatic suggestion applies again. Both the suggestion
    and the choice are kept."""
    if colour not in Health.values:
        raise ValidationError({"colour": f"Choose one of {', '.join(Health.values)}."})
    reason = reason.strip()
    now = timezone.now()
    account = Account.objects.select_for_update().get(pk=account.pk)
    old = selectors.current_assessments([account.pk]).get(account.pk)
    score: float | Decimal | None
    if old is None:
        account_signals, sources = selectors.signals_with_sources([account])[account.pk]
        result = health.evaluate(account_signals, sources=sources)
        suggested, score = result.colour or "", result.score
        reasons, signals = result.as_dict()["reasons"], asdict(account_signals)
    else:
        suggested, score = old.suggested_colour, old.score
        reasons, signals = old.reasons, old.signals
    if suggested and colour != suggested and not reason:
        raise ValidationError(
            {
                "override_reason": (
                    f"Say why: the suggested colour is {suggested} and you chose {colour}."
                )
            }
        )
    if expires_on is not None and expires_on <= timezone.localdate(now):
        raise ValidationError({"override_expires_on": "The expiry date must be in the future."})
    row = HealthAssessment(
        account=account,
        created_at=now,
        source=source,
        created_by=user if user and user.is_authenticated else None,
        suggested_colour=suggested,
        score=None if score is None else Decimal(str(score)),
        reasons=reasons,
        signals=signals,
        chosen_colour=colour,
        chosen_by=user if user and user.is_authenticated else None,
        chosen_at=now,
        override_reason=reason,
        override_expires_on=expires_on,
        colour=colour,
        previous_colour=account.health,
    )
    if old is not None:
        old.is_current = False
        old.save(update_fields=["is_current"])
    row.save()
    if colour != account.health:
        _accounts_recolour(
            [(account, account.health, colour)],
            actor=row.chosen_by,
            reason=reason,
            source=EventSource.PORTFOLIO,
        )
    return row


def _accounts_recolour(
    changes: list[tuple[Account, str, str]],
    *,
    actor: User | None,
    reason: str,
    source: str,
) -> None:
    """Store new effective colours, write them back to Salesforce, run the lifecycle."""
    if not changes:
        return
    for account, _old, new in changes:
        account.health = new
    Account.objects.bulk_update([a for a, _, _ in changes], ["health"])
    _salesforce_writeback([a.pk for a, _, _ in changes], actor=actor, reason=reason)
    open_issues = {
        i.account_id: i
        for i in TriageIssue.objects.filter(
            account_id__in=[a.pk for a, _, _ in changes], status=IssueStatus.OPEN
        )
    }
    for account, old, new in changes:
        issue = open_issues.get(account.pk)
        if issue is None and new == Health.RED:
            # "When a customer falls into Red, immediately create an issue ... and add
            # the Red label."
            issues.triage_issue_open(
                account=account,
                user=actor,
                colour=Health.RED,
                reason=reason or selectors.health_reasons_text(account),
                automatic=True,
            )
        elif issue is not None and issue.colour != new:
            issues.triage_issue_recolour(
                issue,
                to=new,
                actor=actor,
                reason=reason or f"Account health changed from {old or 'unscored'} to {new}.",
                source=source,
            )


def _salesforce_writeback(account_ids: list[int], *, actor: User | None, reason: str) -> None:
    """ "The chosen colour is written back to Salesforce (Health_Score__c)"."""
    salesforce_writeback_enqueue(
        account_ids=account_ids,
        fields=["health"],
        origin=WritebackOrigin.HEALTH_ASSESSMENT,
        detail=reason,
        user=actor,
    )
