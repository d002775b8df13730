"""The to-do inbox (/inbox/): every kind of item a TAM and a manager owe, ordered by
urgency; done and snooze per user and item (CSRF, htmx partial, errors per field);
scoping (another TAM's items are never shown nor markable); a bounded, paginated list in a
fixed number of queries at two sizes."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from engagement.models import Engagement, EngagementStep, SuccessObjective, SuccessTask
from portfolio.models import Account, Activity, ActivityKind
from prioritization.models import PriorityException
from tests.factories import AccountFactory, ActivityFactory, UserFactory
from triage.models import HealthAssessment, TriageIssue
from workspace import inbox
from workspace.models import InboxItemState

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


def kinds(box) -> list[str]:
    return [item.kind for item in box.items]


@pytest.fixture
def book(tam, manager, team):
    """One account per kind of the TAM's items (and what the manager's items need)."""
    now = timezone.now()
    today = timezone.localdate()
    never_called = AccountFactory(tam=tam, name="Never Called", priority=1, health="green")
    called = AccountFactory(tam=tam, name="Called Recently", priority=1, health="green")
    ActivityFactory(account=called, kind=ActivityKind.CADENCE_CALL, occurred_at=now)
    ActivityFactory(account=called, kind=ActivityKind.EBR, occurred_at=now)
    engaged = AccountFactory(tam=tam, name="Onboarding Co", priority=3)
    engagement = Engagement.objects.create(account=engaged, kind="new_customer")
    EngagementStep.objects.create(
        engagement=engagement, key="a", position=1, title="Kick-off call", who="TAM"
    )
    EngagementStep.objects.create(
        engagement=engagement, key="b", position=2, title="Second step", who="TAM"
    )
    objective = SuccessObjective.objects.create(account=engaged, title="Adopt CI")
    SuccessTask.objects.create(
        objective=objective, title="Migrate pipelines", due_date=today + dt.timedelta(days=3)
    )
    SuccessTask.objects.create(
        objective=objective, title="Far away", due_date=today + dt.timedelta(days=90)
    )
    HealthAssessment.objects.create(
        account=engaged,
        created_at=now,
        source="automatic",
        suggested_colour="amber",
        colour="amber",
        previous_colour="green",
    )
    PriorityException.objects.create(
        account=engaged,
        requested_priority=1,
        reason="Key logo",
        requested_by=tam,
        status="approved",
        expires_on=today + dt.timedelta(days=10),
    )
    red = AccountFactory(tam=tam, name="Red Without Issue", priority=3, health="red")
    in_triage = AccountFactory(tam=tam, name="In Triage", priority=3, health="amber")
    TriageIssue.objects.create(
        account=in_triage, title="In Triage at risk", colour="amber", opened_at=now
    )
    other_tam = UserFactory(role="TAM")
    team.tams.add(other_tam)
    theirs = AccountFactory(tam=other_tam, name="Other Book", priority=2, health="red")
    asked = AccountFactory(tam=other_tam, name="Asks For P1", priority=2)
    PriorityException.objects.create(
        account=asked, requested_priority=1, reason="Expansion", requested_by=other_tam
    )
    return {
        "never_called": never_called,
        "called": called,
        "red": red,
        "theirs": theirs,
        "other_tam": other_tam,
    }


def test_tam_inbox_lists_each_kind_ordered_by_due_date(client, tam, book):
    box = inbox.inbox_for_user(tam)
    found = set(kinds(box))
    assert {
        "cadence",
        "ebr",
        "onboarding",
        "success_task",
        "health",
        "exception",
        "triage_update",
    } <= found
    assert not found & {"approval", "red_no_issue", "team_overdue"}  # a manager's only
    titles = [item.title for item in box.items]
    assert "Cadence call with Never Called" in titles
    assert "Cadence call with Called Recently" not in titles
    assert "Kick-off call" in titles and "Second step" not in titles  # next step only
    assert "Far away" not in titles
    dues = [item.due for item in box.items]
    assert dues == sorted(dues)
    assert box.total == len(box.items)
    # Another TAM's account is never in my inbox.
    assert not any("Other Book" in t or "Asks For P1" in t for t in titles)


def test_manager_inbox_has_approvals_overdue_team_and_red_without_issue(client, manager, book):
    box = inbox.inbox_for_user(manager)
    found = {item.kind: item for item in box.items}
    assert found["approval"].title == "P1 for Asks For P1: decide"
    reds = [i.title for i in box.items if i.kind == "red_no_issue"]
    assert "Red Without Issue is red without a triage issue" in reds
    assert "Other Book is red without a triage issue" in reds
    overdue = [i for i in box.items if i.kind == "team_overdue"]
    assert {i.key.split(":")[1] for i in overdue} >= {str(book["other_tam"].pk)}


def test_done_hides_the_item_for_that_user_only(client, tam, manager, book):
    key = f"cadence:{book['never_called'].pk}:{timezone.localdate().isoformat()}"
    client.force_login(tam)
    response = client.post("/inbox/done", {"key": key}, **HTMX)
    assert response.status_code == 200
    assert key not in response.content.decode()
    assert key not in [i.key for i in inbox.inbox_for_user(tam).items]
    assert InboxItemState.objects.get(user=tam, key=key).done_at is not None
    # Without htmx: a redirect back to the inbox.
    other = inbox.inbox_for_user(tam).items[0].key
    response = client.post("/inbox/done", {"key": other})
    assert response.status_code == 302 and response.url == "/inbox/"


def test_snooze_hides_until_the_date_and_refuses_bad_dates(client, tam, book):
    key = next(i.key for i in inbox.inbox_for_user(tam).items if i.kind == "success_task")
    client.force_login(tam)
    today = timezone.localdate()
    response = client.post("/inbox/snooze", {"key": key, "until": "31/12/2027"})
    assert response.status_code == 400
    assert "Enter a date as YYYY-MM-DD" in response.content.decode()
    response = client.post("/inbox/snooze", {"key": key, "until": today.isoformat()}, **HTMX)
    assert "Snooze to a day after today." in response.content.decode()
    assert key in response.content.decode()  # still listed, with the error beside it
    until = today + dt.timedelta(days=5)
    response = client.post("/inbox/snooze", {"key": key, "until": until.isoformat()}, **HTMX)
    assert response.status_code == 200
    assert key not in [i.key for i in inbox.inbox_for_user(tam).items]
    # Back on the snooze date.
    InboxItemState.objects.filter(key=key).update(snoozed_until=today)
    assert key in [i.key for i in inbox.inbox_for_user(tam).items]


def test_a_tam_cannot_mark_another_tams_item(client, tam, book):
    theirs = f"cadence:{book['theirs'].pk}:{timezone.localdate().isoformat()}"
    client.force_login(tam)
    assert client.post("/inbox/done", {"key": theirs}).status_code == 404
    assert client.post("/inbox/done", {"key": "approval:1"}).status_code == 404
    assert client.post("/inbox/done", {"key": "nonsense; drop"}).status_code == 400
    assert not InboxItemState.objects.exists()


def test_writes_need_the_csrf_token(tam, book):
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(tam)
    key = inbox.inbox_for_user(tam).items[0].key
    assert csrf_client.post("/inbox/done", {"key": key}).status_code == 403
    assert not InboxItemState.objects.exists()


def test_the_page_and_its_partial(client, tam, book):
    client.force_login(tam)
    page = client.get("/inbox/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "<h1>Inbox</h1>" in html and "Cadence call with Never Called" in html
    partial = client.get("/inbox/", **HTMX).content.decode()
    assert "<h1>" not in partial and 'id="inbox"' in partial


def many_accounts(tam, n: int) -> None:
    """n P1 accounts never called (each an overdue cadence call and an EBR due)."""
    Account.objects.bulk_create(
        Account(
            salesforce_id=f"001I{tam.pk:04d}{i:09d}",
            name=f"Many {i:05d}",
            arr=Decimal(10_000 + i),
            region_id="US-EAST",
            segment="enterprise",
            tam=tam,
            priority=1,
            health="red" if i % 3 == 0 else "green",
        )
        for i in range(n)
    )
    Activity.objects.bulk_create(
        Activity(
            account=a,
            kind=ActivityKind.CADENCE_CALL,
            occurred_at=timezone.now() - dt.timedelta(days=40 + i % 50),
            subject="Cadence",
        )
        for i, a in enumerate(Account.objects.filter(tam=tam, name__startswith="Many"))
        if i % 2
    )


@pytest.mark.parametrize("n", [5, 400])
def test_inbox_is_bounded_and_its_queries_do_not_grow(
    client, tam, manager, team, n, django_assert_max_num_queries
):
    many_accounts(tam, n)
    client.force_login(tam)
    # session, user, groups, last Customer ER call, item states, 7 sources.
    with django_assert_max_num_queries(13):
        response = client.get("/inbox/")
    box = response.context["inbox"]
    assert len(box.items) == min(box.total, inbox.PAGE_SIZE)
    assert box.total >= 2 * n  # a cadence call and an EBR each
    with django_assert_max_num_queries(13):
        response = client.get("/inbox/", {"page": 2}, **HTMX)
    assert response.status_code == 200
    client.force_login(manager)
    # ... and the manager's three sources (the TAMs and their overdue counts: two).
    with django_assert_max_num_queries(17):
        response = client.get("/inbox/")
    assert response.context["inbox"].total >= n // 3  # the red accounts without an issue
