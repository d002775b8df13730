"""Health assessments on real PostgreSQL: signals from data and from the TAM, the
automatic run beside the TAM's choice, overrides and their expiry, the issue lifecycle."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from portfolio.models import ActivityKind
from tests import factories
from tests.fakes.salesforce import fake_salesforce, salesforce_ca  # noqa: F401 - fixtures
from triage import selectors
from triage.models import (
    AssessmentSource,
    EventKind,
    HealthAssessment,
    HealthSignals,
    IssueStatus,
    TriageIssue,
    TriageRole,
)
from triage.services import assessments, issues

pytestmark = pytest.mark.django_db


@pytest.fixture
def account(tam, team):
    return factories.AccountFactory(tam=tam, priority=1, nps=None)


def set_signals(account, **values):
    HealthSignals.objects.update_or_create(account=account, defaults=values)


def test_signals_come_from_data_where_portfolio_has_it(account):
    account.nps = -20
    account.onboarding_completed = None
    account.save()
    now = timezone.now()
    for days in (30, 200):
        factories.ActivityFactory(
            account=account, kind=ActivityKind.EBR, occurred_at=now - dt.timedelta(days=days)
        )
    factories.ActivityFactory(
        account=account, kind=ActivityKind.EBR, occurred_at=now - dt.timedelta(days=400)
    )
    # Attendance from the outcomes recorded on scheduled calls: one missed of three is
    # "Occasionally doesn't show up or are late to scheduled cadence calls" (Yellow).
    for days, outcome in ((10, "held"), (40, "missed"), (70, "held")):
        factories.ActivityFactory(
            account=account,
            kind=ActivityKind.CADENCE_CALL,
            occurred_at=now - dt.timedelta(days=days),
            outcome=outcome,
        )
    signals = selectors.signals_for_accounts([account])[account.pk]
    assert signals.nps == "negative"
    assert signals.ebrs_last_12_months == 2
    assert signals.cadence_attendance == "sometimes_late"
    assert signals.onboarding is True
    assert signals.tickets_per_month is None  # Portfolio has no ticket data: the TAM's


def test_calls_held_without_a_recorded_outcome_say_nothing_about_attendance(account):
    """tam-account-triage.md, Amber: "Frequently don't show up or are late to scheduled
    cadence calls." Two calls held in 180 days of a monthly cadence used to read as the
    customer frequently absent (amber): the TAM's fewer calls are not the customer's
    absence. With no outcome recorded attendance is unknown; two missed of three is
    "frequently"."""
    now = timezone.now()
    for days in (20, 100):
        factories.ActivityFactory(
            account=account,
            kind=ActivityKind.CADENCE_CALL,
            occurred_at=now - dt.timedelta(days=days),
        )
    assert selectors.signals_for_accounts([account])[account.pk].cadence_attendance is None
    assessments.health_assess(account_ids=[account.pk])
    reasons = selectors.current_assessment(account).reasons
    assert "cadence_attendance" not in [r["signal"] for r in reasons]
    for days in (30, 60):
        factories.ActivityFactory(
            account=account,
            kind=ActivityKind.CADENCE_CALL,
            occurred_at=now - dt.timedelta(days=days),
            outcome="missed",
        )
    factories.ActivityFactory(
        account=account,
        kind=ActivityKind.CADENCE_CALL,
        occurred_at=now - dt.timedelta(days=45),
        outcome="held",
    )
    assert selectors.signals_for_accounts([account])[account.pk].cadence_attendance == (
        "often_absent"
    )


def test_the_tams_signals_fill_the_rest_and_override_cadence(account):
    set_signals(account, tickets_per_month=20, cadence_attendance="always", champion_lost=True)
    signals = selectors.signals_for_accounts([account])[account.pk]
    assert signals.tickets_per_month == 20
    assert signals.cadence_attendance == "always"
    assert signals.champion_lost is True
    assert signals.user_adoption is None  # "" in the form = unknown


def test_signals_for_a_batch_take_a_fixed_number_of_queries(django_assert_num_queries, tam):
    accounts = [factories.AccountFactory(tam=tam) for _ in range(5)]
    # TAM signals, activity counts, usage summaries (2 more when any account has usage:
    # tests/integration/test_usage_health.py).
    with django_assert_num_queries(3):
        selectors.signals_for_accounts(accounts)


def test_automatic_run_stores_the_suggestion_and_sets_account_health(account):
    set_signals(account, user_adoption="low", use_cases="not_defined")
    summary = assessments.health_assess(account_ids=[account.pk])
    account.refresh_from_db()
    current = selectors.current_assessment(account)
    assert summary.assessed == 1 and summary.changed_colour == 1
    assert current.suggested_colour == "amber"  # (1 + 2) / 2 = 1.5 -> the riskier colour
    assert current.source == AssessmentSource.AUTOMATIC
    assert account.health == "amber"
    assert [r["signal"] for r in current.reasons] == ["user_adoption", "use_cases"]
    # A rerun with nothing changed writes nothing.
    assessments.health_assess(account_ids=[account.pk])
    assert HealthAssessment.objects.filter(account=account).count() == 1


def test_override_needs_a_reason(account):
    set_signals(account, user_adoption="low")
    assessments.health_assess(account_ids=[account.pk])
    with pytest.raises(ValidationError) as exc:
        assessments.health_colour_set(account=account, user=account.tam, colour="green")
    assert "override_reason" in exc.value.error_dict
    # Confirming the suggestion needs none.
    row = assessments.health_colour_set(account=account, user=account.tam, colour="amber")
    assert row.chosen_colour == "amber" and not row.is_override


def test_an_automatic_run_never_overwrites_the_tams_colour(account):
    set_signals(account, user_adoption="low")
    assessments.health_assess(account_ids=[account.pk])
    assessments.health_colour_set(
        account=account,
        user=account.tam,
        colour="yellow",
        reason="Adoption is low because they are mid-rollout; the champion is strong.",
    )
    set_signals(account, user_adoption="low", no_communication=True)
    assessments.health_assess(account_ids=[account.pk])
    account.refresh_from_db()
    current = selectors.current_assessment(account)
    assert account.health == "yellow"
    assert current.suggested_colour == "red"
    assert current.chosen_colour == "yellow"
    assert current.chosen_by == account.tam
    assert current.source == AssessmentSource.AUTOMATIC
    panel = selectors.health_panel(account)
    assert panel["differs"] is True
    assert panel["suggested"] == "red" and panel["chosen"] == "yellow"
    assert len(panel["history"]) == 3


def test_a_confirmed_colour_stands_with_its_reason_when_the_suggestion_moves(account):
    """A TAM who confirmed the suggestion gave no reason; when new data suggests another
    colour the confirmed one still stands, and says what it was (it was a 500: the kept
    choice broke the "an override needs a reason" check)."""
    set_signals(account, user_adoption="low")
    assessments.health_assess(account_ids=[account.pk])
    assessments.health_colour_set(account=account, user=account.tam, colour="amber")

    set_signals(account, user_adoption="low", no_communication=True)
    assessments.health_assess(account_ids=[account.pk])

    account.refresh_from_db()
    current = selectors.current_assessment(account)
    assert (account.health, current.suggested_colour, current.chosen_colour) == (
        "amber",
        "red",
        "amber",
    )
    assert current.override_reason.startswith("Amber confirmed on ")
    assert current.override_reason.endswith("Portfolio now suggests red.")


def test_an_expired_override_lets_the_suggestion_apply(account):
    set_signals(account, user_adoption="low")
    assessments.health_assess(account_ids=[account.pk])
    today = timezone.localdate()
    assessments.health_colour_set(
        account=account,
        user=account.tam,
        colour="green",
        reason="Renewal signed yesterday.",
        expires_on=today + dt.timedelta(days=7),
    )
    account.refresh_from_db()
    assert account.health == "green"
    assessments.health_assess(account_ids=[account.pk], now=timezone.now() + dt.timedelta(days=8))
    account.refresh_from_db()
    current = selectors.current_assessment(account)
    assert account.health == "amber"
    assert current.chosen_colour == "" and current.note == "Override expired"


def test_turning_red_opens_an_issue_at_once_with_the_tams_manager(account, manager):
    owner = factories.pm.SalesforceUser.objects.create(salesforce_id="005AE", name="Ann Exec")
    account.owner = owner
    account.save()
    set_signals(account, downgrading_or_cancelling=True)
    assessments.health_assess(account_ids=[account.pk])
    issue = TriageIssue.objects.get(account=account)
    assert issue.status == IssueStatus.OPEN
    assert issue.colour == "red" and issue.is_new
    assert issue.labels == ["Red", "New", account.region_id]
    assert issue.needs_churn_class  # opened automatically: the TAM must classify it
    team = {(m.role, m.user_id, m.name) for m in issue.team.all()}
    assert (TriageRole.TAM_LEADER, manager.pk, "") in team
    assert (TriageRole.TAM, account.tam_id, "") in team
    assert (TriageRole.ACCOUNT_OWNER, None, "Ann Exec") in team
    assert "downgrading/cancelling" in issue.health_reason
    assert issue.milestone.startswith("FY")
    assert issue.salesforce_url.endswith(account.salesforce_id)


def test_recovery_closes_the_issue_with_the_new_label_in_history(account):
    set_signals(account, no_communication=True)
    assessments.health_assess(account_ids=[account.pk])
    issue = TriageIssue.objects.get(account=account)
    set_signals(account, no_communication=None, use_cases="achieved", nps=None)
    assessments.health_assess(account_ids=[account.pk])
    issue.refresh_from_db()
    assert issue.status == IssueStatus.CLOSED
    assert issue.colour == "green"
    assert issue.labels[0] == "Green"
    kinds = list(issue.events.order_by("created_at", "pk").values_list("kind", "to_colour"))
    assert kinds == [
        (EventKind.OPENED, "red"),
        (EventKind.MOVED, "green"),
        (EventKind.CLOSED, "green"),
    ]


def test_a_tam_can_open_an_issue_for_a_worried_green_account(account):
    account.health = "green"
    account.save()
    issue = issues.triage_issue_open(
        account=account, user=account.tam, colour="green", reason="Champion is leaving."
    )
    assert issue.labels[:2] == ["Green", "New"]
    # It stays open while the account stays healthy.
    assessments.health_colour_set(account=account, user=account.tam, colour="yellow", reason="x")
    issue.refresh_from_db()
    assert issue.is_open and issue.colour == "yellow"
    with pytest.raises(ValidationError, match="already has an open triage issue"):
        issues.triage_issue_open(account=account, user=account.tam, colour="amber", reason="y")


def test_churn_class_is_required_for_red(account):
    with pytest.raises(ValidationError) as exc:
        issues.triage_issue_open(account=account, user=account.tam, colour="red", reason="x")
    assert "churn class" in str(exc.value.error_dict["churn_class"])
    issue = issues.triage_issue_open(account=account, user=account.tam, colour="amber", reason="x")
    with pytest.raises(ValidationError) as exc:
        issues.triage_issue_move(issue=issue, user=account.tam, colour="red", reason="Worse")
    assert "churn_class" in exc.value.error_dict
    issues.triage_issue_move(
        issue=issue, user=account.tam, colour="red", reason="Worse", churn_class="E&U"
    )
    issue.refresh_from_db()
    assert issue.labels[:3] == ["Red", "New", "E&U"]


def test_board_move_records_the_reason_and_sets_the_account_colour(account):
    account.health = "amber"
    account.save()
    issue = issues.triage_issue_open(account=account, user=account.tam, colour="amber", reason="x")
    issues.triage_issue_move(
        issue=issue, user=account.tam, colour="yellow", reason="Reviewed on the ER call."
    )
    issue.refresh_from_db()
    account.refresh_from_db()
    assert issue.status == IssueStatus.CLOSED  # amber -> yellow: recovered
    assert account.health == "yellow"
    move = issue.events.get(kind=EventKind.MOVED)
    assert (move.from_colour, move.to_colour, move.reason) == (
        "amber",
        "yellow",
        "Reviewed on the ER call.",
    )
    assert selectors.current_assessment(account).source == AssessmentSource.BOARD


def test_chosen_colour_is_written_back_to_salesforce(
    account,
    fake_salesforce,  # noqa: F811
    django_capture_on_commit_callbacks,
):
    from portfolio.writeback import writeback_push

    record = fake_salesforce.add("Account", Name=account.name, Health_Score__c="Green")
    account.salesforce_id = record["Id"]
    account.health = account.salesforce_health = "green"  # as a sync leaves it
    account.save()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assessments.health_colour_set(
            account=account, user=account.tam, colour="amber", reason="Champion left."
        )
    assert callbacks  # the write-back (and nothing else runs in this test)
    writeback_push(account_ids=[account.pk])
    assert fake_salesforce.get("Account", record["Id"])["Health_Score__c"] == "Amber"


def test_daily_run_opens_issues_for_accounts_red_in_salesforce(account):
    from triage.tasks import health_assess_all

    account.health = "red"  # arrived from Salesforce, not through Portfolio
    account.save()
    message = health_assess_all.apply().get()
    assert "1 triage issues opened" in message
    assert TriageIssue.objects.get(account=account).colour == "red"
    assert "0 triage issues opened" in health_assess_all.apply().get()


def test_the_automatic_run_is_set_based(tam):
    """Queries per batch do not grow with the number of accounts."""

    def run(n: int) -> int:
        accounts = [factories.AccountFactory(tam=tam, health="") for _ in range(n)]
        for a in accounts:
            set_signals(a, use_cases="achieved")
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as ctx:
            assessments.health_assess(account_ids=[a.pk for a in accounts])
        assert all(
            HealthAssessment.objects.get(account=a, is_current=True).colour == "green"
            for a in accounts
        )
        return len(ctx.captured_queries)

    assert run(3) == run(30)


def test_open_issues_follow_their_accounts_renewal_date_and_only_when_it_changes(account):
    account.renewal_date = None
    account.save(update_fields=["renewal_date"])
    issue = issues.triage_issue_open(
        account=account, user=account.tam, colour="amber", reason="Champion is leaving."
    )
    TriageIssue.objects.filter(pk=issue.pk).update(needs_push=False)

    assert issues.triage_issues_refresh_from_accounts() == 0  # both without a date

    account.renewal_date = dt.date(2027, 3, 31)
    account.save(update_fields=["renewal_date"])
    assert issues.triage_issues_refresh_from_accounts() == 1
    issue.refresh_from_db()
    assert issue.renewal_date == dt.date(2027, 3, 31) and issue.needs_push
    TriageIssue.objects.filter(pk=issue.pk).update(needs_push=False)
    assert issues.triage_issues_refresh_from_accounts() == 0  # nothing changed since


def test_the_demo_records_call_outcomes_that_match_the_accounts_colour(tam, team):
    """Some missed calls in the demo: amber and red customers missed two of their recent
    cadence calls, yellow ones came late once, green ones attended all; a rerun changes
    nothing."""
    from portfolio.models import Activity
    from triage import demo

    now = timezone.now()
    accounts = {
        c: factories.AccountFactory(tam=tam, health=c, nps=None)
        for c in ("green", "yellow", "amber")
    }
    for account in accounts.values():
        for days in (5, 35, 65, 95, 300):
            factories.ActivityFactory(
                account=account,
                kind=ActivityKind.CADENCE_CALL,
                occurred_at=now - dt.timedelta(days=days),
            )
    demo.populate()
    outcomes = {
        c: list(
            Activity.objects.filter(account=a, kind=ActivityKind.CADENCE_CALL)
            .order_by("-occurred_at")
            .values_list("outcome", flat=True)
        )
        for c, a in accounts.items()
    }
    assert outcomes["green"] == ["held", "held", "held", "held", ""]  # 300 days: outside 180
    assert outcomes["yellow"] == ["held", "late", "held", "held", ""]
    assert outcomes["amber"] == ["held", "missed", "held", "missed", ""]
    signals = selectors.signals_for_accounts(list(accounts.values()))
    assert [signals[a.pk].cadence_attendance for a in accounts.values()] == [
        "always",
        "sometimes_late",
        "often_absent",
    ]
    demo.populate()
    assert Activity.objects.filter(outcome="missed").count() == 2
