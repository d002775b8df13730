"""The account page: Salesforce facts, trace panel, engagement, timeline and the
activity form (htmx and plain POST), scoping, and a fixed query count."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from portfolio.models import Activity, Contact, Opportunity, SalesManager
from tests.factories import (
    AccountFactory,
    ActivityFactory,
    ContactFactory,
    OpportunityFactory,
    UserFactory,
    region,
)

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


def url(account) -> str:
    return reverse("ui:account", args=[account.salesforce_id])


def test_account_page_shows_facts_engagement_and_timeline(client, tam):
    synced = timezone.now() - dt.timedelta(hours=2)
    account = AccountFactory(
        tam=tam,
        name="Acme",
        priority=1,
        health="amber",
        synced_at=synced,
        plan="Ultimate",
        stages_adopted=4,
    )
    OpportunityFactory(account=account, name="Acme up-tier", type="Up-tier")
    OpportunityFactory(account=account, name="Old deal", is_closed=True)
    ContactFactory(account=account, name="Wile E. Coyote", title="CTO")
    ActivityFactory(
        account=account,
        kind="cadence_call",
        subject="Monthly sync",
        occurred_at=timezone.now() - dt.timedelta(days=3),
    )
    client.force_login(tam)
    response = client.get(url(account))
    html = response.content.decode()
    assert response.status_code == 200
    assert "<h1>Acme</h1>" in html
    assert "Synced from Salesforce" in html and synced.strftime("%Y") in html
    assert "Ultimate" in html and "Acme up-tier" in html and "Old deal" not in html
    assert "Monthly sync" in html
    assert "History of ARR, TAM, health and priority" in html  # from the account history
    # The engagement panel (cadence, success plan, ...) loads right after, over htmx.
    engagement = reverse("engagement:account", args=[account.salesforce_id])
    assert f'hx-get="{engagement}" hx-trigger="load"' in html
    assert f'<a href="{engagement}">' in html
    assert 'for="id_activity_subject"' in html  # labelled form fields
    # Each app's form prefixes its own ids, so the page has no duplicates.
    for prefixed in ("id_health_colour", "id_triage_colour", "id_exception_reason"):
        assert f'id="{prefixed}"' in html
    ids = re.findall(r'\sid="([^"]+)"', html)
    assert len(ids) == len(set(ids)), sorted({i for i in ids if ids.count(i) > 1})
    assert '<span id="account-health-badge" class="badge health-amber">Amber</span>' in html


def test_other_tams_account_is_404(client, tam):
    other = AccountFactory(tam=UserFactory(role="TAM"))
    client.force_login(tam)
    assert client.get(url(other)).status_code == 404
    post = client.post(
        reverse("ui:activity_log", args=[other.salesforce_id]),
        {"kind": "call", "occurred_at": "2026-11-01T10:00", "subject": "x"},
    )
    assert post.status_code == 404
    assert not Activity.objects.filter(account=other).exists()


def test_manager_sees_team_account(client, manager, tam, team):
    account = AccountFactory(tam=tam)
    client.force_login(manager)
    assert client.get(url(account)).status_code == 200


def test_log_activity_with_htmx_returns_the_timeline(client, tam):
    account = AccountFactory(tam=tam)
    client.force_login(tam)
    response = client.post(
        reverse("ui:activity_log", args=[account.salesforce_id]),
        {
            "kind": "cadence_call",
            "occurred_at": "2026-11-20T10:30",
            "subject": "QBR prep",
            "body": "Discussed CI adoption",
        },
        **HTMX,
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<section class="card timeline-panel" id="timeline"')
    assert "QBR prep" in html and "Activity logged." in html
    activity = Activity.objects.get(account=account)
    assert (activity.kind, activity.user, activity.body) == (
        "cadence_call",
        tam,
        "Discussed CI adoption",
    )


def test_invalid_activity_keeps_what_the_user_typed(client, tam):
    account = AccountFactory(tam=tam)
    client.force_login(tam)
    future = (timezone.localtime() + dt.timedelta(days=10)).strftime("%Y-%m-%dT%H:%M")
    data = {
        "kind": "email",
        "occurred_at": future,
        "subject": "Follow-up on renewal",
        "body": "Typed notes that must survive",
    }
    response = client.post(reverse("ui:activity_log", args=[account.salesforce_id]), data, **HTMX)
    html = response.content.decode()
    assert response.status_code == 200
    assert "cannot be logged in the future" in html
    assert 'value="Follow-up on renewal"' in html
    assert "Typed notes that must survive" in html
    assert '<option value="email" selected>' in html
    assert not Activity.objects.exists()
    # Without htmx: the full page comes back, 400, with the same typed input.
    plain = client.post(
        reverse("ui:activity_log", args=[account.salesforce_id]), {**data, "subject": "  "}
    )
    assert plain.status_code == 400
    assert "Typed notes that must survive" in plain.content.decode()
    assert "<h1>" in plain.content.decode()


def test_log_activity_without_js_redirects_back(client, tam):
    account = AccountFactory(tam=tam)
    client.force_login(tam)
    response = client.post(
        reverse("ui:activity_log", args=[account.salesforce_id]),
        {"kind": "note", "occurred_at": "2026-11-20T10:30", "subject": "Note"},
    )
    assert response.status_code == 302
    assert response["Location"] == url(account) + "#timeline"


def test_activity_log_requires_post_and_csrf(tam):
    from django.test import Client

    account = AccountFactory(tam=tam)
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(tam)
    endpoint = reverse("ui:activity_log", args=[account.salesforce_id])
    assert strict.get(endpoint).status_code == 405
    response = strict.post(
        endpoint, {"kind": "note", "occurred_at": "2026-11-20T10:30", "subject": "x"}
    )
    assert response.status_code == 403


@pytest.mark.parametrize("emea", [False, True], ids=["us", "emea-enterprise"])
@pytest.mark.parametrize("n", [10, 1000])
def test_account_page_query_count_does_not_grow(
    client, tam, team, n, emea, django_assert_max_num_queries
):
    if emea:  # the page also names who decides an exception and who is informed
        sales = UserFactory(role="Sales Management", first_name="Sasha", last_name="Sales")
        SalesManager.objects.create(user=sales).regions.set(["EMEA"])
        account = AccountFactory(tam=tam, priority=2, region=region("EMEA"), segment="enterprise")
    else:
        account = AccountFactory(tam=tam, priority=2)
    Opportunity.objects.bulk_create(
        Opportunity(
            account=account,
            account_salesforce_id=account.salesforce_id,
            salesforce_id=f"006Q{i:014d}",
            name=f"Opp {i}",
        )
        for i in range(n)
    )
    Contact.objects.bulk_create(Contact(account=account, name=f"Contact {i}") for i in range(n))
    Activity.objects.bulk_create(
        Activity(
            account=account,
            kind="call",
            subject=f"Call {i}",
            user=tam,
            occurred_at=timezone.now() - dt.timedelta(hours=i),
        )
        for i in range(n)
    )
    client.force_login(tam)
    # Portfolio: session, user with groups, account (with its rule set), opportunities,
    # write-backs, history, timeline = 7; prioritization 2 (decision, exceptions) and
    # health and triage 3 (assessments, issues with their last update, their teams); EMEA
    # Enterprise: who decides and who is informed in the same twelve.
    with django_assert_max_num_queries(12):
        response = client.get(url(account))
    assert response.status_code == 200
    assert ("Sasha Sales" in response.content.decode()) is emea
    with django_assert_max_num_queries(8):
        response = client.post(
            reverse("ui:activity_log", args=[account.salesforce_id]),
            {"kind": "note", "occurred_at": "2026-11-20T10:30", "subject": "x"},
            **HTMX,
        )
    assert response.status_code == 200


def test_the_open_issue_shows_its_latest_update(client, tam):
    """The triage panel reads the open issue's last update with the issue (not every
    update of every issue): the latest one's date and text."""
    from triage.models import TriageIssue, TriageUpdate

    account = AccountFactory(tam=tam, health="red")
    issue = TriageIssue.objects.create(
        account=account, title="Red", colour="red", opened_at=timezone.now()
    )
    client.force_login(tam)
    assert "No weekly update yet." in client.get(url(account)).content.decode()
    now = timezone.now()
    TriageUpdate.objects.bulk_create(
        TriageUpdate(
            issue=issue, author=tam, created_at=now - dt.timedelta(days=d), body=f"Week -{d}"
        )
        for d in (14, 0, 7)
    )
    html = client.get(url(account)).content.decode()
    assert f"Last update {timezone.localdate(now):%Y-%m-%d}: Week -0" in html
    assert "Week -7" not in html and "No weekly update yet." not in html
