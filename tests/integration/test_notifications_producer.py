"""The notifications producer on real PostgreSQL: every event kind, to the right people,
idempotent (run twice: same rows), quiet (a storm of changes is one notification per
account per kind per day), the actor not told of what they did, and a real worker."""

from __future__ import annotations

import datetime as dt

import pghistory
import pytest
from django.utils import timezone

from integrations.models import Source, SyncRun, SyncStatus
from notifications.models import Kind, Notification, NotificationCursor
from notifications.producer import notifications_produce
from portfolio.models import Account, Activity, ActivityKind, Team
from prioritization.models import ExceptionStatus, PriorityDecision, PriorityException
from tests.factories import AccountFactory, TeamFactory, UserFactory, region
from triage.models import EventKind, EventSource, TriageEvent, TriageIssue

pytestmark = pytest.mark.django_db


def rows(**filters):
    return sorted(
        Notification.objects.filter(**filters).values_list("user__username", "kind", "key", "day")
    )


def test_health_turning_red_notifies_the_tam_and_the_team_manager_once(tam, manager, team):
    account = AccountFactory(tam=tam, health="green")
    Account.objects.filter(pk=account.pk).update(health="red")

    result = notifications_produce()

    assert result.produced["account_history"] == 2
    got = Notification.objects.filter(kind=Kind.HEALTH_AT_RISK).order_by("user_id")
    assert {n.user for n in got} == {tam, manager}
    note = got.first()
    assert note.title == f"{account.name} turned Red"
    assert note.body == "Health Green → Red"
    assert note.url == f"/account/{account.salesforce_id}/"
    assert note.account == account

    before = rows()
    again = notifications_produce()
    assert again.total == 0
    assert rows() == before


def test_a_storm_of_changes_is_one_notification_per_account_per_day(tam):
    accounts = [AccountFactory(tam=tam, health="green") for _ in range(20)]
    ids = [a.pk for a in accounts]
    # One sync after another: red, green, amber, red again, for all twenty accounts.
    for colour in ["red", "green", "amber", "red", "yellow", "red"]:
        with pghistory.context(sync_run=7):
            Account.objects.filter(pk__in=ids).update(health=colour)

    notifications_produce()

    notes = Notification.objects.filter(user=tam, kind=Kind.HEALTH_AT_RISK)
    assert notes.count() == 20
    assert notes.filter(body__contains="(Salesforce sync run 7)").count() == 20


def test_improving_or_being_created_red_is_not_turning_red(tam):
    AccountFactory(tam=tam, health="red")  # created red: no change to report
    improving = AccountFactory(tam=tam, health="red")
    Account.objects.filter(pk=improving.pk).update(health="amber")

    notifications_produce()

    assert not Notification.objects.filter(kind=Kind.HEALTH_AT_RISK).exists()


def test_nobody_is_told_what_they_did_themselves(tam):
    account = AccountFactory(tam=tam, health="green")
    with pghistory.context(user=tam.pk):
        Account.objects.filter(pk=account.pk).update(health="amber")

    notifications_produce()

    assert not Notification.objects.exists()


def test_priority_change_says_why_and_links_to_the_priority_page(tam):
    account = AccountFactory(tam=tam, priority=2)
    PriorityDecision.objects.create(
        account=account,
        priority=1,
        previous_priority=2,
        model="us_enterprise",
        decided_by="uptier_opportunity",
        trace=[
            {"rule": "onboarding", "question": "Onboarding?", "answer": False, "evidence": ""},
            {
                "rule": "uptier_opportunity",
                "question": "Open up-tier opportunity closing in the next 6 months?",
                "answer": True,
                "evidence": "closes 2027-01-15 (54 days)",
            },
        ],
        cause="sync",
    )
    # The same account's unchanged re-decision is no change.
    PriorityDecision.objects.create(
        account=account, priority=1, previous_priority=1, model="us_enterprise",
        decided_by="uptier_opportunity", cause="sync",
    )  # fmt: skip

    notifications_produce()

    note = Notification.objects.get(kind=Kind.PRIORITY_CHANGED)
    assert note.user == tam
    assert note.title == f"{account.name}: P2 → P1"
    assert note.body == (
        "Open up-tier opportunity closing in the next 6 months? closes 2027-01-15 (54 days)"
    )
    assert note.url == f"/priority/account/{account.salesforce_id}/"


def test_exception_goes_to_the_manager_who_decides_then_back_to_the_tam(tam, manager, team):
    account = AccountFactory(tam=tam)
    exception = PriorityException.objects.create(
        account=account, requested_priority=1, reason="Key logo renewal", requested_by=tam
    )
    notifications_produce()
    pending = Notification.objects.get(kind=Kind.EXCEPTION_PENDING)
    assert pending.user == manager
    assert pending.url == "/priority/exceptions/pending/"

    exception.status = ExceptionStatus.APPROVED
    exception.decided_by = manager
    exception.decided_at = timezone.now()
    exception.decision_note = "Agreed in the 1:1"
    exception.save()
    notifications_produce()

    decided = Notification.objects.get(kind=Kind.EXCEPTION_DECIDED)
    assert decided.user == tam  # the deciding manager is not told of their own decision
    assert decided.body == "Agreed in the 1:1"
    assert "approved" in decided.title


def test_triage_issue_opened_and_moved_is_one_notification_a_day(tam, manager, team):
    account = AccountFactory(tam=tam, health="amber")
    now = timezone.now()
    issue = TriageIssue.objects.create(
        account=account, title=account.name, colour="amber", opened_at=now
    )
    TriageEvent.objects.create(
        issue=issue, kind=EventKind.OPENED, source=EventSource.PORTFOLIO,
        to_colour="amber", actor=manager, created_at=now,
    )  # fmt: skip
    TriageEvent.objects.create(
        issue=issue, kind=EventKind.MOVED, source=EventSource.GITLAB, from_colour="amber",
        to_colour="red", reason="Champion left", created_at=now,
    )  # fmt: skip

    notifications_produce()

    # The manager opened it: told only of the move (same day: collapsed for the TAM).
    assert rows(kind=Kind.TRIAGE_ISSUE) == sorted(
        [
            (tam.username, Kind.TRIAGE_ISSUE, f"account:{account.pk}", timezone.localdate()),
            (manager.username, Kind.TRIAGE_ISSUE, f"account:{account.pk}", timezone.localdate()),
        ]
    )
    to_manager = Notification.objects.get(kind=Kind.TRIAGE_ISSUE, user=manager)
    assert to_manager.title == f"{account.name}: triage issue moved Amber → Red"
    assert to_manager.url == f"/triage/issues/{issue.pk}/"


def test_failed_sync_and_held_writeback_go_to_admins_only(tam, manager, admin_user):
    now = timezone.now()
    failed = SyncRun.objects.create(
        source=Source.SALESFORCE, started_at=now, finished_at=now, status=SyncStatus.FAILED,
        error="Salesforce: INVALID_SESSION_ID",
    )  # fmt: skip
    held = SyncRun.objects.create(
        source=Source.SALESFORCE_WRITEBACK, started_at=now, finished_at=now,
        status=SyncStatus.NEEDS_CONFIRMATION,
    )  # fmt: skip
    SyncRun.objects.create(
        source=Source.SALESFORCE, started_at=now, finished_at=now, status=SyncStatus.SUCCEEDED
    )

    notifications_produce()

    notes = {n.key: n for n in Notification.objects.filter(kind=Kind.SYNC_PROBLEM)}
    assert set(notes) == {f"sync_run:{failed.pk}", f"sync_run:{held.pk}"}
    assert {n.user for n in notes.values()} == {admin_user}
    assert notes[f"sync_run:{failed.pk}"].body == "Salesforce: INVALID_SESSION_ID"
    assert notes[f"sync_run:{failed.pk}"].url == "/integrations/sync-runs/"
    assert notes[f"sync_run:{held.pk}"].url == "/integrations/sync-runs/writeback/"
    assert "needs confirmation" in notes[f"sync_run:{held.pk}"].title


def test_renewal_without_a_tam_goes_to_the_region_managers_once(manager):
    TeamFactory(manager=manager, region=region("US-EAST"))
    TeamFactory(region=region("EMEA"))  # another region's manager is not told
    today = timezone.localdate()
    soon = AccountFactory(tam=None, renewal_date=today + dt.timedelta(days=30))
    AccountFactory(tam=None, renewal_date=today + dt.timedelta(days=200))

    notifications_produce()
    notifications_produce(now=timezone.now() + dt.timedelta(days=1))  # the next day

    note = Notification.objects.get(kind=Kind.RENEWAL_NO_TAM)
    assert note.user == manager
    assert note.account == soon
    assert note.day == soon.renewal_date - dt.timedelta(days=90)


def test_a_cadence_call_that_fell_due_is_told_once_an_old_backlog_is_not(tam):
    now = timezone.now()
    newly = AccountFactory(tam=tam, priority=1)  # P1: a call every 30 days
    Activity.objects.create(
        account=newly, kind=ActivityKind.CADENCE_CALL, subject="Cadence", outcome="held",
        occurred_at=now - dt.timedelta(days=32),
    )  # fmt: skip
    backlog = AccountFactory(tam=tam, priority=1)
    Activity.objects.create(
        account=backlog, kind=ActivityKind.CADENCE_CALL, subject="Cadence", outcome="held",
        occurred_at=now - dt.timedelta(days=120),
    )  # fmt: skip
    on_time = AccountFactory(tam=tam, priority=1)
    Activity.objects.create(
        account=on_time, kind=ActivityKind.CADENCE_CALL, subject="Cadence", outcome="held",
        occurred_at=now - dt.timedelta(days=3),
    )  # fmt: skip

    notifications_produce()
    notifications_produce(now=now + dt.timedelta(hours=25))

    note = Notification.objects.get(kind=Kind.CADENCE_OVERDUE)
    assert note.account == newly
    assert note.day == timezone.localdate(now - dt.timedelta(days=32)) + dt.timedelta(days=30)


def test_cursors_record_what_was_read(tam):
    start = timezone.now()
    notifications_produce(now=start)
    cursors = dict(NotificationCursor.objects.values_list("source", "position"))
    assert set(cursors) >= {"account_history", "priority_decisions", "triage_events", "sync_runs"}
    assert all(position == start for position in cursors.values())


def test_a_set_based_run_costs_the_same_queries_at_two_sizes():
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    notifications_produce()  # the cursors exist from here on

    def run_with(n: int) -> int:
        tam = UserFactory(role="TAM")
        team = Team.objects.create(name=f"T{n}", manager=UserFactory(role="Manager"))
        team.tams.add(tam)
        ids = [AccountFactory(tam=tam, health="green").pk for _ in range(n)]
        Account.objects.filter(pk__in=ids).update(health="red")
        with CaptureQueriesContext(connection) as queries:
            notifications_produce()
        return len(queries)

    assert run_with(3) == run_with(30)
    assert Notification.objects.count() == 2 * 33


@pytest.mark.worker
def test_the_beat_task_runs_on_a_real_worker(celery_worker, tam):
    from notifications.tasks import notifications_produce

    account = AccountFactory(tam=tam, health="yellow")
    Account.objects.filter(pk=account.pk).update(health="amber")
    celery_worker()

    first = notifications_produce.apply_async().get(timeout=60)
    second = notifications_produce.apply_async().get(timeout=60)

    assert first.startswith("1 notifications")
    assert second.startswith("0 notifications")
    assert Notification.objects.get().user == tam
