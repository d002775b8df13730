"""One way to name an account in a URL: its Salesforce id (issue 17.8). The URLs that took
the primary key before (`/priority/accounts/<pk>/`, `.../exceptions/`,
`/triage/agenda/fix/<pk>/`) answer with a permanent redirect, for bookmarks and for the
links of notifications and emails already sent; in the user's scope, so another book's
account is a 404 both ways and the redirect never tells that it exists."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from notifications.models import Kind, Notification
from prioritization.models import PriorityException
from tests.factories import AccountFactory, UserFactory
from triage.models import TriageIssue

pytestmark = pytest.mark.django_db

HX = {"HTTP_HX_REQUEST": "true"}


def test_the_old_priority_page_moved_permanently_to_the_salesforce_id(client, tam):
    account = AccountFactory(tam=tam)
    client.force_login(tam)
    response = client.get(f"/priority/accounts/{account.pk}/?from=email")
    assert response.status_code == 301
    new = reverse("prioritization:account", args=[account.salesforce_id])
    assert new == f"/priority/account/{account.salesforce_id}/"
    assert response["Location"] == f"{new}?from=email"
    assert client.get(response["Location"]).status_code == 200


def test_another_books_account_is_404_both_ways(client, tam, admin_user):
    other = AccountFactory(tam=UserFactory(role="TAM"))
    client.force_login(tam)
    assert client.get(f"/priority/accounts/{other.pk}/").status_code == 404
    assert client.get(f"/priority/account/{other.salesforce_id}/").status_code == 404
    assert client.post(f"/priority/accounts/{other.pk}/exceptions/").status_code == 404
    assert client.get("/priority/accounts/987654321/").status_code == 404
    client.force_login(admin_user)
    assert client.get(f"/priority/accounts/{other.pk}/").status_code == 301


def test_a_form_posted_to_the_old_url_is_posted_again_to_the_new_one(client, tam):
    account = AccountFactory(tam=tam)
    client.force_login(tam)
    form = {"requested_priority": "1", "reason": "Critical project"}
    response = client.post(f"/priority/accounts/{account.pk}/exceptions/", form)
    assert response.status_code == 308
    assert response["Location"] == reverse(
        "prioritization:exception_request", args=[account.salesforce_id]
    )
    assert not PriorityException.objects.filter(account=account).exists()
    response = client.post(f"/priority/accounts/{account.pk}/exceptions/", form, follow=True)
    assert response.redirect_chain[0] == (
        f"/priority/account/{account.salesforce_id}/exceptions/",
        308,
    )
    assert PriorityException.objects.filter(account=account, reason="Critical project").exists()
    assert client.get(f"/priority/accounts/{account.pk}/exceptions/").status_code == 405


def test_the_old_agenda_fix_keeps_its_query_and_its_roles(client, tam, manager, team):
    account = AccountFactory(tam=tam, health="red")
    old = f"/triage/agenda/fix/{account.pk}/?show=missing_issues&page=1"
    client.force_login(tam)
    assert client.post(old).status_code == 403  # the agenda is for managers, either URL
    client.force_login(UserFactory(role="Manager"))
    assert client.post(old).status_code == 404  # not in this manager's teams
    client.force_login(manager)
    response = client.post(old, **HX)
    assert response.status_code == 308
    new = reverse("triage:agenda_fix", args=[account.salesforce_id])
    assert new == f"/triage/account/{account.salesforce_id}/fix/"
    assert response["Location"] == f"{new}?show=missing_issues&page=1"
    response = client.post(old, follow=True, **HX)
    assert response.status_code == 200 and "Show fewer" in response.content.decode()
    assert TriageIssue.objects.filter(account=account, status="open").exists()


def test_a_notification_stored_with_the_old_link_still_opens_the_page(client, tam):
    account = AccountFactory(tam=tam)
    note = Notification.objects.create(
        user=tam,
        kind=Kind.PRIORITY_CHANGED,
        key=f"account:{account.pk}",
        day=timezone.localdate(),
        account=account,
        title=f"{account.name}: P2 → P1",
        body="Critical project",
        url=f"/priority/accounts/{account.pk}/",
    )
    client.force_login(tam)
    response = client.post(reverse("notifications:open", args=[note.pk]), follow=True)
    assert response.status_code == 200
    assert response.redirect_chain[-1] == (
        f"/priority/account/{account.salesforce_id}/",
        301,
    )
