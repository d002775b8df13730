"""Writes of the triage app: health assessments, triage issues, the Customer ER call.

STYLE.md: `<entity>_<verb>`, keyword-only, typed, `transaction.atomic`, Celery tasks
enqueued on commit. The GitLab mirror lives in `triage.mirror`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Exists, F, OuterRef, Q
from django.utils import timezone

from engagement.rules import EBR_WINDOW_DAYS, HELD_OUTCOMES
from portfolio.models import (
    Account,
    Activity,
    ActivityKind,
    CallOutcome,
    Health,
    Team,
    WritebackOrigin,
)
from portfolio.services import salesforce_writeback_enqueue
from triage import health
from triage import labels as triage_labels
from triage.models import (
    AssessmentSource,
    CustomerERCall,
    EventKind,
    EventSource,
    HealthAssessment,
    HealthSignals,
    IssueStatus,
    TriageEvent,
    TriageIssue,
    TriageRole,
    TriageTeamMember,
    TriageUpdate,
)
from usage.selectors import usage_measures_for_accounts

BATCH_SIZE = 500
AT_RISK = health.AT_RISK
HEALTHY = frozenset({Health.GREEN.value, Health.YELLOW.value})
# Window over which cadence attendance is read from the recorded call outcomes.
CADENCE_WINDOW_DAYS = 180
DATA_ONLY_SIGNALS = ("nps", "ebrs_last_12_months", "onboarding", *health.USAGE_ONLY_SIGNALS)
TAM_SIGNAL_FIELDS: tuple[str, ...] = tuple(
    name for name in health.SIGNAL_NAMES if name not in DATA_ONLY_SIGNALS
)


# --- Signals: from data where Portfolio has it, from the TAM where it does not ------------


def signals_for_accounts(
    accounts: Sequence[Account], *, now: dt.datetime | None = None
) -> dict[int, health.Signals]:
    """The health signals of each account (`signals_with_sources` without the sources)."""
    return {pk: signals for pk, (signals, _) in signals_with_sources(accounts, now=now).items()}


def signals_with_sources(
    accounts: Sequence[Account], *, now: dt.datetime | None = None
) -> dict[int, tuple[health.Signals, dict[str, tuple[str, str]]]]:
    """The health signals of each account and, per signal, (who answered it, evidence); in
    four queries whatever the batch size.

    From data: NPS (Account.nps), EBRs held in the last 12 months
    (`engagement.rules.EBR_WINDOW_DAYS`, as the engagement panel counts them), cadence
    attendance from the outcomes the TAM recorded on the cadence calls of the last 180
    days (held / late / missed; calls never scheduled or never given an outcome say
    nothing: unknown), onboarding (Account.onboarding_*). From the TAM: every other signal
    (HealthSignals); the TAM's cadence attendance, when given, overrides the data. From
    product usage (`usage.selectors.usage_measures_for_accounts`): adoption, releases
    behind, tickets, stages, new features, for the signals the TAM left unknown (the
    TAM's answer wins; the usage figures are kept beside it as evidence)."""
    now = now or timezone.now()
    ids = [a.pk for a in accounts]
    tam_rows = {row.account_id: row for row in HealthSignals.objects.filter(account_id__in=ids)}
    usage = usage_measures_for_accounts(accounts, today=timezone.localdate(now))
    recent_call = Q(
        kind=ActivityKind.CADENCE_CALL,
        occurred_at__gte=now - dt.timedelta(days=CADENCE_WINDOW_DAYS),
    )
    counts = {
        row["account_id"]: row
        for row in Activity.objects.filter(account_id__in=ids)
        .order_by()
        .values("account_id")
        .annotate(
            ebrs=Count(
                "pk",
                filter=Q(
                    kind=ActivityKind.EBR,
                    outcome__in=HELD_OUTCOMES,
                    occurred_at__gte=now - dt.timedelta(days=EBR_WINDOW_DAYS),
                ),
            ),
            held=Count("pk", filter=recent_call & Q(outcome=CallOutcome.HELD)),
            late=Count("pk", filter=recent_call & Q(outcome=CallOutcome.LATE)),
            missed=Count("pk", filter=recent_call & Q(outcome=CallOutcome.MISSED)),
        )
    }
    result = {}
    for account in accounts:
        row = tam_rows.get(account.pk)
        data: dict = {}
        from_data: dict[str, str] = {}
        if row is not None:
            for name in TAM_SIGNAL_FIELDS:
                value = getattr(row, name)
                data[name] = None if value == "" else value
        activity = counts.get(account.pk, {"ebrs": 0, "held": 0, "late": 0, "missed": 0})
        data["nps"] = health.nps_class(account.nps)
        data["ebrs_last_12_months"] = activity["ebrs"]
        if not data.get("cadence_attendance"):
            data["cadence_attendance"] = health.cadence_attendance_from_outcomes(
                held=activity["held"], late=activity["late"], missed=activity["missed"]
            )
            from_data["cadence_attendance"] = "data"
        if account.onboarding_started:
            data["onboarding"] = account.onboarding_completed is None
        from_data.update(nps="data", ebrs_last_12_months="data", onboarding="data")
        measures, thresholds = usage.get(account.pk, (None, None))
        derived = health.usage_signals(measures, thresholds) if measures and thresholds else {}
        data, sources = health.merge_usage(data, derived, known_source=from_data)
        result[account.pk] = (health.Signals(**data), sources)
    return result


@transaction.atomic
def health_signals_update(
    *, account: Account, user: AbstractBaseUser | None, values: dict
) -> HealthSignals:
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


# --- Assessments --------------------------------------------------------------------------


@dataclass
class AssessSummary:
    assessed: int = 0
    changed_suggestion: int = 0
    changed_colour: int = 0
    overrides_expired: int = 0
    unchanged: int = 0


def _current_assessments(account_ids: Iterable[int]) -> dict[int, HealthAssessment]:
    return {
        a.account_id: a
        for a in HealthAssessment.objects.filter(account_id__in=list(account_ids), is_current=True)
    }


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
    with_sources = signals_with_sources(accounts, now=now)
    current = _current_assessments(ids)
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
        if keep_choice:
            row.chosen_colour = old.chosen_colour
            row.chosen_by_id = old.chosen_by_id
            row.chosen_at = old.chosen_at
            row.override_reason = old.override_reason
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


@transaction.atomic
def health_colour_set(
    *,
    account: Account,
    user: AbstractBaseUser | None,
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
    old = _current_assessments([account.pk]).get(account.pk)
    if old is None:
        account_signals, sources = signals_with_sources([account])[account.pk]
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
    actor: AbstractBaseUser | None,
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
            triage_issue_open(
                account=account,
                user=actor,
                colour=Health.RED,
                reason=reason or _reason_text(account),
                automatic=True,
            )
        elif issue is not None and issue.colour != new:
            _issue_recolour(
                issue,
                to=new,
                actor=actor,
                reason=reason or f"Account health changed from {old or 'unscored'} to {new}.",
                source=source,
            )


def _salesforce_writeback(
    account_ids: list[int], *, actor: AbstractBaseUser | None, reason: str
) -> None:
    """ "The chosen colour is written back to Salesforce (Health_Score__c)"."""
    salesforce_writeback_enqueue(
        account_ids=account_ids,
        fields=["health"],
        origin=WritebackOrigin.HEALTH_ASSESSMENT,
        detail=reason,
        user=actor,
    )


def _reason_text(account: Account) -> str:
    current = _current_assessments([account.pk]).get(account.pk)
    if current is None or not current.reasons:
        return ""
    lines = [f"* {r['colour'].title()}: {r['detail']}" for r in current.reasons]
    if current.is_override:
        lines.append(f"* TAM's choice ({current.chosen_colour}): {current.override_reason}")
    return "\n".join(lines)


# --- Triage issues ------------------------------------------------------------------------


def salesforce_url(account: Account) -> str:
    base = settings.SALESFORCE_INSTANCE_URL or "https://login.salesforce.com"
    return f"{base.rstrip('/')}/{account.salesforce_id}"


def _milestone(renewal_date: dt.date | None) -> str:
    if renewal_date is None:
        return ""
    return triage_labels.fiscal_quarter(
        renewal_date, fiscal_year_start_month=settings.FISCAL_YEAR_START_MONTH
    )


def _mirror_on_commit(issue: TriageIssue) -> None:
    """Enqueue the GitLab push after commit. With GitLab off nothing is enqueued: the
    issue stays `needs_push` and the first `sync_gitlab` after GitLab is set up pushes it."""
    from triage import mirror, tasks

    if mirror.mirror_enabled() is not None:
        return
    issue_id = issue.pk
    transaction.on_commit(lambda: tasks.triage_issue_mirror.delay(issue_id))


def _event(
    issue: TriageIssue,
    kind: str,
    *,
    source: str,
    actor: AbstractBaseUser | None = None,
    from_colour: str = "",
    to_colour: str = "",
    reason: str = "",
) -> TriageEvent:
    return TriageEvent.objects.create(
        issue=issue,
        kind=kind,
        source=source,
        actor=actor if actor and actor.is_authenticated else None,
        from_colour=from_colour,
        to_colour=to_colour,
        reason=reason,
        created_at=timezone.now(),
    )


def _require_churn_class(colour: str, churn_class: str) -> None:
    if colour == Health.RED and not churn_class:
        raise ValidationError(
            {
                "churn_class": (
                    "A red account needs a churn class label (E&A, E&U, U&A or U&U): "
                    "see Churn Classification."
                )
            }
        )


@transaction.atomic
def triage_issue_open(
    *,
    account: Account,
    user: AbstractBaseUser | None,
    colour: str,
    reason: str = "",
    churn_class: str = "",
    due_date: dt.date | None = None,
    automatic: bool = False,
) -> TriageIssue:
    """Open the account's triage issue with the handbook's template fields and labels.

    "If you are worried about a Green or a Yellow account and think it might be Amber,
    create an issue in the project". The triage team starts with the account owner, the
    TAM and the TAM's leader ("You must ensure that your Leader and/or the Customer
    Success Director is included in this issue"). A TAM opening a red issue must give
    the churn class; an issue opened automatically when the account turned red is
    flagged until the TAM classifies it."""
    if colour not in Health.values:
        raise ValidationError({"colour": f"Choose one of {', '.join(Health.values)}."})
    if churn_class and churn_class not in triage_labels.CHURN_CLASSES:
        raise ValidationError({"churn_class": "Not a churn class."})
    if not automatic:
        _require_churn_class(colour, churn_class)
    if TriageIssue.objects.filter(account=account, status=IssueStatus.OPEN).exists():
        raise ValidationError(f"{account.name} already has an open triage issue.")
    now = timezone.now()
    actor = user if user and user.is_authenticated else None
    issue = TriageIssue.objects.create(
        account=account,
        title=f"{account.name}",
        colour=colour,
        churn_class=churn_class,
        region=account.region_id or "",
        salesforce_url=salesforce_url(account),
        success_plan_url=account.collaboration_project_url,
        renewal_date=account.renewal_date,
        milestone=_milestone(account.renewal_date),
        health_reason=reason.strip(),
        due_date=due_date,
        opened_by=actor,
        opened_at=now,
    )
    _default_team(issue, account)
    _event(
        issue,
        EventKind.OPENED,
        source=EventSource.AUTOMATIC if automatic else EventSource.PORTFOLIO,
        actor=actor,
        to_colour=colour,
        reason=reason.strip(),
    )
    _mirror_on_commit(issue)
    return issue


def _default_team(issue: TriageIssue, account: Account) -> None:
    members = []
    if account.owner_id:
        owner = account.owner
        members.append(
            TriageTeamMember(
                issue=issue, role=TriageRole.ACCOUNT_OWNER, user=owner.user, name=owner.name
            )
        )
    if account.tam_id:
        members.append(TriageTeamMember(issue=issue, role=TriageRole.TAM, user_id=account.tam_id))
        leaders = (
            Team.objects.filter(tams=account.tam_id)
            .order_by("pk")
            .values_list("manager_id", flat=True)
            .distinct()
        )
        for manager_id in leaders:
            members.append(
                TriageTeamMember(issue=issue, role=TriageRole.TAM_LEADER, user_id=manager_id)
            )
    TriageTeamMember.objects.bulk_create(members, ignore_conflicts=True)


def _issue_recolour(
    issue: TriageIssue,
    *,
    to: str,
    actor: AbstractBaseUser | None,
    reason: str,
    source: str,
) -> TriageIssue:
    """Change the issue's colour label, recording why; close it when the account moved
    from Amber or Red to Green or Yellow: "close it AND add the label so we can see the
    history in the issue"."""
    old = issue.colour
    if old == to:
        return issue
    issue.colour = to
    issue.needs_push = True
    fields = ["colour", "needs_push", "updated_at"]
    _event(
        issue,
        EventKind.MOVED,
        source=source,
        actor=actor,
        from_colour=old,
        to_colour=to,
        reason=reason,
    )
    if old in AT_RISK and to in HEALTHY:
        issue.status = IssueStatus.CLOSED
        issue.closed_at = timezone.now()
        fields += ["status", "closed_at"]
        _event(
            issue,
            EventKind.CLOSED,
            source=source,
            actor=actor,
            from_colour=old,
            to_colour=to,
            reason=f"Back to {to}: closed with the ~{triage_labels.COLOUR_LABELS[to]} label.",
        )
    issue.save(update_fields=fields)
    _mirror_on_commit(issue)
    return issue


@transaction.atomic
def triage_issue_move(
    *,
    issue: TriageIssue,
    user: AbstractBaseUser,
    colour: str,
    reason: str,
    churn_class: str = "",
) -> TriageIssue:
    """Move a card on the board: a new colour for the issue and the account, with the
    reason recorded ("Once you have reviewed the account's health with the team on the
    call, you can assign it to the appropriate health score both on the issue and in
    Salesforce"). Moving a red/amber card to green/yellow closes the issue."""
    errors: dict[str, str] = {}
    if colour not in Health.values:
        errors["colour"] = f"Choose one of {', '.join(Health.values)}."
    if not reason.strip():
        errors["reason"] = "Say why the card moves."
    if churn_class and churn_class not in triage_labels.CHURN_CLASSES:
        errors["churn_class"] = "Not a churn class."
    if errors:
        raise ValidationError(errors)
    issue = TriageIssue.objects.select_for_update().select_related("account").get(pk=issue.pk)
    if not issue.is_open:
        raise ValidationError("This issue is closed.")
    _require_churn_class(colour, churn_class or issue.churn_class)
    if churn_class and churn_class != issue.churn_class:
        issue.churn_class = churn_class
        issue.needs_push = True
        issue.save(update_fields=["churn_class", "needs_push", "updated_at"])
    _issue_recolour(
        issue, to=colour, actor=user, reason=reason.strip(), source=EventSource.PORTFOLIO
    )
    account = issue.account
    if account.health != colour:
        health_colour_set(
            account=account,
            user=user,
            colour=colour,
            reason=reason.strip(),
            source=AssessmentSource.BOARD,
        )
    return issue


@transaction.atomic
def triage_issue_review(*, issue: TriageIssue, user: AbstractBaseUser) -> TriageIssue:
    """ "Once you have reviewed the issue, remove the ~New label." """
    if not issue.is_new:
        return issue
    issue.is_new = False
    issue.needs_push = True
    issue.save(update_fields=["is_new", "needs_push", "updated_at"])
    _event(issue, EventKind.REVIEWED, source=EventSource.PORTFOLIO, actor=user)
    _mirror_on_commit(issue)
    return issue


@transaction.atomic
def triage_issue_edit(
    *,
    issue: TriageIssue,
    user: AbstractBaseUser,
    churn_class: str,
    due_date: dt.date | None,
    health_reason: str,
    success_plan_url: str,
) -> TriageIssue:
    """Edit the template fields, churn class and due date ("The due date field is managed
    by the ... Technical Account Manager as a method for tracking next steps")."""
    if churn_class and churn_class not in triage_labels.CHURN_CLASSES:
        raise ValidationError({"churn_class": "Not a churn class."})
    if issue.is_open:
        _require_churn_class(issue.colour, churn_class)
    issue.churn_class = churn_class
    issue.due_date = due_date
    issue.health_reason = health_reason.strip()
    issue.success_plan_url = success_plan_url.strip()
    issue.needs_push = True
    issue.save(
        update_fields=[
            "churn_class",
            "due_date",
            "health_reason",
            "success_plan_url",
            "needs_push",
            "updated_at",
        ]
    )
    _mirror_on_commit(issue)
    return issue


@transaction.atomic
def triage_update_add(*, issue: TriageIssue, user: AbstractBaseUser, body: str) -> TriageUpdate:
    """ "Make sure you keep your issues updated every week with the steps you have taken to
    try and pull the account back into a healthy state." Mirrored as a GitLab note."""
    body = body.strip()
    if not body:
        raise ValidationError({"body": "Say what was done."})
    update = TriageUpdate.objects.create(
        issue=issue, author=user, created_at=timezone.now(), body=body
    )
    TriageIssue.objects.filter(pk=issue.pk).update(needs_push=True, updated_at=timezone.now())
    _mirror_on_commit(issue)
    return update


@transaction.atomic
def triage_team_member_add(
    *,
    issue: TriageIssue,
    role: str,
    user: AbstractBaseUser | None = None,
    name: str = "",
) -> TriageTeamMember:
    if role not in TriageRole.values:
        raise ValidationError({"role": "Not a triage team role."})
    if user is None and not name.strip():
        raise ValidationError({"name": "Pick a user or type a name."})
    if user is not None and issue.team.filter(role=role, user=user).exists():
        raise ValidationError({"user": "Already on the team in this role."})
    member = TriageTeamMember.objects.create(issue=issue, role=role, user=user, name=name.strip())
    TriageIssue.objects.filter(pk=issue.pk).update(needs_push=True)
    _mirror_on_commit(issue)
    return member


@transaction.atomic
def customer_er_call_record(
    *, user: AbstractBaseUser, held_at: dt.datetime | None = None, notes: str = ""
) -> CustomerERCall:
    """Record that the weekly Customer ER call was held (the agenda's "since" point)."""
    return CustomerERCall.objects.create(
        held_at=held_at or timezone.now(), recorded_by=user, notes=notes.strip()
    )


def triage_issues_refresh_from_accounts() -> int:
    """Keep the template fields of open issues in step with their accounts (Salesforce):
    contract renewal date (and so the milestone) and region label. Set-based; changed
    issues are marked for the GitLab mirror. Returns how many changed."""
    stale = list(
        TriageIssue.objects.filter(status=IssueStatus.OPEN)
        .filter(
            # Not `~Q(renewal_date=F(...))`: Django makes that true when both are NULL,
            # which re-pushed every issue of an account without a renewal date.
            Q(renewal_date__lt=F("account__renewal_date"))
            | Q(renewal_date__gt=F("account__renewal_date"))
            | Q(renewal_date__isnull=True, account__renewal_date__isnull=False)
            | Q(renewal_date__isnull=False, account__renewal_date__isnull=True)
            | ~Q(region=F("account__region_id"))
        )
        .select_related("account")
    )
    for issue in stale:
        issue.renewal_date = issue.account.renewal_date
        issue.milestone = _milestone(issue.renewal_date)
        issue.region = issue.account.region_id or ""
        issue.needs_push = True
    TriageIssue.objects.bulk_update(
        stale, ["renewal_date", "milestone", "region", "needs_push"], batch_size=BATCH_SIZE
    )
    return len(stale)


def triage_issues_open_for_red() -> int:
    """Open the issue of every red account that has none (the daily run's safety net for
    colours that arrived from Salesforce rather than through Portfolio): "When a customer
    falls into Red, immediately create an issue". Returns how many were opened."""
    open_issue = TriageIssue.objects.filter(account=OuterRef("pk"), status=IssueStatus.OPEN)
    missing = (
        Account.objects.filter(health=Health.RED)
        .filter(~Exists(open_issue))
        .select_related("owner")
        .order_by("pk")
    )
    opened = 0
    for account in missing:
        with transaction.atomic():
            triage_issue_open(
                account=account,
                user=None,
                colour=Health.RED,
                reason=_reason_text(account) or "Red in Salesforce.",
                automatic=True,
            )
        opened += 1
    return opened


# --- The five-minute check's one-click fixes -----------------------------------------------


@transaction.atomic
def triage_reconcile_fix(*, user: AbstractBaseUser, account: Account) -> TriageIssue:
    """Fix one mismatch of the five-minute check for `account`:

    - "ensure that all Amber and Red accounts have indeed been added to the board": an
      amber/red account without an open issue gets one;
    - "make sure that all issues in the project have the correct health score according
      to Salesforce": the open issue takes the account's (Salesforce) colour."""
    account = Account.objects.select_for_update().get(pk=account.pk)
    issue = TriageIssue.objects.filter(account=account, status=IssueStatus.OPEN).first()
    if issue is None:
        if account.health not in AT_RISK:
            raise ValidationError(f"{account.name} is not amber or red: nothing to fix.")
        return triage_issue_open(
            account=account,
            user=user,
            colour=account.health,
            reason=_reason_text(account),
            automatic=True,
        )
    if not account.health or issue.colour == account.health:
        raise ValidationError(f"{account.name}'s issue already matches Salesforce.")
    return _issue_recolour(
        issue,
        to=account.health,
        actor=user,
        reason=f"Five-minute check: matched the Salesforce health score ({account.health}).",
        source=EventSource.PORTFOLIO,
    )
