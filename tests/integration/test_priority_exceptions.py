"""Exceptions: a TAM requests, only the TAM's manager decides (never their own request),
approved exceptions feed the rules; the htmx form keeps what the user typed."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from portfolio.models import Activity, SalesManager
from prioritization.models import ExceptionStatus, PriorityDecision, PriorityException
from prioritization.selectors import can_decide_exception, pending_exceptions_for_manager
from prioritization.services import (
    priority_exception_approve,
    priority_exception_reject,
    priority_exception_request,
)
from tests.factories import AccountFactory, TeamFactory, UserFactory, region

pytestmark = pytest.mark.django_db


def request_p1(account, user, **kwargs):
    return priority_exception_request(
        account=account,
        requested_by=user,
        requested_priority=1,
        reason="Large strategic customer with no LAM",
        **kwargs,
    )


def test_manager_approval_makes_the_account_p1_with_the_exception_in_the_trace(team, manager, tam):
    account = AccountFactory(tam=tam)
    exception = request_p1(account, tam)
    assert exception.status == "pending" and exception.kind == "exception"
    priority_exception_approve(exception=exception, manager=manager, note="agreed in 1:1")
    account.refresh_from_db()
    assert account.priority == 1
    decision = PriorityDecision.objects.get(account=account)
    assert (decision.decided_by, decision.cause, decision.actor) == (
        "p1_exception",
        "exception",
        manager,
    )
    assert decision.exception_id == exception.pk
    exception.refresh_from_db()
    assert (exception.status, exception.decided_by) == ("approved", manager)


def test_rejection_leaves_the_model_priority(team, manager, tam):
    account = AccountFactory(tam=tam)
    exception = request_p1(account, tam)
    priority_exception_reject(exception=exception, manager=manager)
    exception.refresh_from_db()
    assert exception.status == "rejected"
    assert not PriorityDecision.objects.exists()


def test_only_the_tams_manager_decides_and_never_their_own_request(team, manager, tam):
    account = AccountFactory(tam=tam)
    other_manager = TeamFactory().manager
    exception = request_p1(account, tam)
    assert not can_decide_exception(other_manager, exception)
    assert not can_decide_exception(tam, exception)
    with pytest.raises(PermissionDenied):
        priority_exception_approve(exception=exception, manager=other_manager)
    with pytest.raises(PermissionDenied):
        priority_exception_approve(exception=exception, manager=tam)
    # The manager files a request on the TAM's account: they cannot approve it themselves.
    exception.status = ExceptionStatus.REJECTED
    exception.save(update_fields=["status"])
    own = request_p1(account, manager)
    assert not can_decide_exception(manager, own)
    with pytest.raises(PermissionDenied):
        priority_exception_approve(exception=own, manager=manager)


def test_one_pending_request_per_account_and_decided_only_once(team, manager, tam):
    account = AccountFactory(tam=tam)
    exception = request_p1(account, tam)
    with pytest.raises(ValidationError):
        request_p1(account, tam)
    priority_exception_approve(exception=exception, manager=manager)
    with pytest.raises(ValidationError):
        priority_exception_reject(exception=exception, manager=manager)


def test_a_new_approval_ends_the_previous_one(team, manager, tam):
    account = AccountFactory(tam=tam, churn_risk=True)
    first = request_p1(account, tam)
    priority_exception_approve(exception=first, manager=manager)
    second = priority_exception_request(
        account=account, requested_by=tam, requested_priority=2, reason="Mitigated, low touch"
    )
    priority_exception_approve(exception=second, manager=manager)
    first.refresh_from_db()
    account.refresh_from_db()
    assert first.status == "expired"
    assert account.priority == 2  # churn risk says P1, the approved P2 exception wins


def test_expired_exception_no_longer_counts(team, manager, tam):
    from prioritization.services import priorities_reevaluate

    account = AccountFactory(tam=tam)
    exception = request_p1(account, tam, expires_on=dt.date.today() + dt.timedelta(days=10))
    priority_exception_approve(exception=exception, manager=manager)
    result = priorities_reevaluate(cause="manual", as_of=dt.date.today() + dt.timedelta(days=11))
    account.refresh_from_db()
    assert result.exceptions_expired == 1 and account.priority == 2


def test_emea_enterprise_requests_are_proposals(tam):
    account = AccountFactory(tam=tam, region=region("EMEA"))
    assert request_p1(account, tam).kind == "emea_proposal"


def test_pending_list_is_the_managers_teams_only(team, manager, tam):
    mine = request_p1(AccountFactory(tam=tam), tam)
    outsider = UserFactory(role="TAM")
    request_p1(AccountFactory(tam=outsider), outsider)
    assert list(pending_exceptions_for_manager(manager)) == [mine]
    assert not pending_exceptions_for_manager(tam).exists()


# --- Views ----------------------------------------------------------------------------------


def test_htmx_form_error_keeps_what_the_user_typed(client, tam):
    account = AccountFactory(tam=tam)
    client.force_login(tam)
    url = reverse("prioritization:exception_request", args=[account.salesforce_id])
    response = client.post(
        url, {"requested_priority": "2", "reason": "short", "expires_on": "2030-01-31"},
        HTTP_HX_REQUEST="true",
    )  # fmt: skip
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" not in html  # the partial only
    assert "at least 10 characters" in html
    assert "short</textarea>" in html
    assert 'value="2030-01-31"' in html
    assert '<option value="2" selected>' in html
    # The same unique ids as on the account page, which carries other apps' forms too.
    assert 'id="id_exception_reason"' in html and 'id="id_reason"' not in html
    assert not PriorityException.objects.exists()


def test_plain_post_error_is_400_full_page(client, tam):
    account = AccountFactory(tam=tam)
    client.force_login(tam)
    url = reverse("prioritization:exception_request", args=[account.salesforce_id])
    response = client.post(url, {"requested_priority": "1", "reason": ""})
    assert response.status_code == 400
    assert "<html" in response.content.decode()


def test_htmx_request_creates_and_shows_it(client, tam):
    account = AccountFactory(tam=tam)
    client.force_login(tam)
    url = reverse("prioritization:exception_request", args=[account.salesforce_id])
    response = client.post(
        url,
        {
            "requested_priority": "1",
            "reason": "Risk the model does not see",
            "on_behalf_of_ae": "on",
        },
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    assert "Sent to the TAM" in response.content.decode()
    assert PriorityException.objects.get().requested_priority == 1


def test_cannot_request_on_an_account_one_cannot_see(client, tam):
    other = AccountFactory(tam=UserFactory(role="TAM"))
    client.force_login(tam)
    url = reverse("prioritization:exception_request", args=[other.salesforce_id])
    assert client.post(url, {"requested_priority": "1", "reason": "x" * 20}).status_code == 404


def test_manager_approves_with_htmx_and_the_tam_cannot(client, team, manager, tam):
    account = AccountFactory(tam=tam)
    exception = request_p1(account, tam)
    approve = reverse("prioritization:exception_approve", args=[exception.pk])
    client.force_login(tam)
    response = client.post(approve, HTTP_HX_REQUEST="true")
    assert "Only the TAM" in response.content.decode()
    exception.refresh_from_db()
    assert exception.status == "pending"
    client.force_login(manager)
    response = client.post(approve, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert f'id="exception-row-{exception.pk}"' in response.content.decode()
    assert "Approved" in response.content.decode()
    account.refresh_from_db()
    assert account.priority == 1


def test_pending_page_lists_requests_with_fixed_queries(
    client, team, manager, tam, django_assert_max_num_queries
):
    for _ in range(5):
        request_p1(AccountFactory(tam=tam), tam)
    client.force_login(manager)
    with django_assert_max_num_queries(12):
        response = client.get(reverse("prioritization:pending"))
    assert response.status_code == 200
    assert response.content.decode().count("Approve</button>") == 5


@pytest.mark.parametrize("n", [3, 30])
def test_pending_requests_are_bounded_with_their_count_on_every_page(
    client, team, manager, tam, n, django_assert_max_num_queries
):
    """Issue 12: the pending list is its first 25 rows with its count and a "show all"
    that pages by 100, on the priorities page, the pending page and the team view."""
    for _ in range(n):
        request_p1(AccountFactory(tam=tam), tam)
    client.force_login(manager)
    shown = min(n, 25)
    for url in (reverse("prioritization:index"), reverse("prioritization:pending")):
        with django_assert_max_num_queries(12):
            html = client.get(url).content.decode()
        assert html.count("Approve</button>") == shown
        assert f'<span class="badge">{n}</span>' in html
        assert ("Show all" in html) is (n > 25)
    team_page = client.get(reverse("ui:team")).content.decode()
    assert team_page.count("Approve</button>") == shown
    everything = client.get(reverse("prioritization:pending"), {"show": "pending"})
    assert everything.content.decode().count("Approve</button>") == n


def test_the_row_shown_after_approval_has_the_new_priority(client, team, manager, tam):
    account = AccountFactory(tam=tam, priority=3)
    exception = request_p1(account, tam)
    client.force_login(manager)

    response = client.post(
        reverse("prioritization:exception_approve", args=[exception.pk]), HTTP_HX_REQUEST="true"
    )

    assert "now P1" in response.content.decode()


# --- EMEA Enterprise: the regional Sales Management team decides -------------------------


def sales_manager(*regions: str):
    user = UserFactory(role="Sales Management", first_name="Sasha", last_name="Sales")
    sm = SalesManager.objects.create(user=user)
    sm.regions.set(regions)
    return user


def test_emea_exceptions_are_decided_by_the_regions_sales_management(team, manager, tam):
    """tam-account-engagement.md, EMEA Enterprise, Prioritization process and exceptions:
    "Exceptions will be addressed to the regional Sales Management team and documented"."""
    emea = sales_manager("EMEA")
    apac = sales_manager("APAC")
    account = AccountFactory(tam=tam, region=region("EMEA"))
    exception = request_p1(account, tam)
    # Addressed to EMEA Sales Management; the TAM's manager is informed, not the decider.
    assert can_decide_exception(emea, exception)
    assert not can_decide_exception(manager, exception)
    assert not can_decide_exception(apac, exception)
    with pytest.raises(PermissionDenied, match="EMEA Sales Management"):
        priority_exception_approve(exception=exception, manager=manager)
    with pytest.raises(PermissionDenied):
        priority_exception_approve(exception=exception, manager=apac)
    note = Activity.objects.get(account=account, kind="note")
    assert "EMEA Sales Management" in note.subject
    assert "Sasha Sales" in note.body
    assert f"TAM's manager informed: {manager.get_full_name()}" in note.body
    priority_exception_approve(exception=exception, manager=emea, note="Agreed with sales")
    account.refresh_from_db()
    exception.refresh_from_db()
    assert (exception.status, exception.decided_by, account.priority) == ("approved", emea, 1)
    decided = Activity.objects.filter(account=account, kind="note").order_by("-id").first()
    assert "approved" in decided.subject and "Agreed with sales" in decided.body
    assert f"TAM's manager informed: {manager.get_full_name()}" in decided.body


def test_other_regions_keep_the_tams_manager_as_the_decider(team, manager, tam):
    sales = sales_manager("EMEA", "US-EAST")
    exception = request_p1(AccountFactory(tam=tam, region=region("US-EAST")), tam)
    assert exception.kind == "exception"
    assert not can_decide_exception(sales, exception)
    assert can_decide_exception(manager, exception)
    # EMEA Commercial is not EMEA Enterprise: the TAM's manager decides there too.
    commercial = request_p1(
        AccountFactory(tam=tam, region=region("EMEA"), segment="commercial"), tam
    )
    assert not can_decide_exception(sales, commercial) and can_decide_exception(manager, commercial)
    assert not Activity.objects.filter(kind="note").exists()


def test_a_sales_manager_sees_and_decides_only_their_regions_exceptions(client, team, manager, tam):
    emea = sales_manager("EMEA")
    mine = request_p1(AccountFactory(tam=tam, region=region("EMEA"), name="Eurocorp"), tam)
    us = request_p1(AccountFactory(tam=tam, name="Uscorp"), tam)
    other_tam = UserFactory(role="TAM")
    outside = request_p1(
        AccountFactory(tam=other_tam, region=region("EMEA"), name="Nocorp"), other_tam
    )
    assert set(pending_exceptions_for_manager(emea)) == {mine, outside}
    assert not pending_exceptions_for_manager(sales_manager("APAC")).exists()
    # The TAM's manager still sees the EMEA request (informed) with no buttons for it.
    client.force_login(manager)
    html = client.get(reverse("prioritization:pending")).content.decode()
    assert "Eurocorp" in html and "EMEA Sales Management decides; you are informed" in html
    assert html.count("Approve</button>") == 1  # the US request only
    client.force_login(emea)
    html = client.get(reverse("prioritization:pending")).content.decode()
    assert "Eurocorp" in html and "Nocorp" in html and "Uscorp" not in html
    assert html.count("Approve</button>") == 2
    # Out of their regions: not found.
    assert client.post(reverse("prioritization:exception_approve", args=[us.pk])).status_code == 404
    response = client.post(
        reverse("prioritization:exception_approve", args=[mine.pk]), HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200 and "Approved" in response.content.decode()
    mine.refresh_from_db()
    assert mine.decided_by == emea


def test_the_account_page_says_who_decides_and_who_is_informed(client, team, manager, tam):
    sales_manager("EMEA")
    account = AccountFactory(tam=tam, region=region("EMEA"))
    client.force_login(tam)
    url = reverse("prioritization:exception_request", args=[account.salesforce_id])
    html = client.post(
        url, {"requested_priority": "1", "reason": "Weekly migration work"}, HTTP_HX_REQUEST="true"
    ).content.decode()
    assert "Sent to the EMEA Sales Management team (the TAM's manager is informed)" in html
    assert "Sasha Sales" in html and manager.get_full_name() in html
    page = client.get(
        reverse("prioritization:account", args=[account.salesforce_id])
    ).content.decode()
    assert "waiting for the EMEA Sales Management team" in page
    assert f"the TAM's manager is informed ({manager.get_full_name()})" in page
