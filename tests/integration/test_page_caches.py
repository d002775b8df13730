"""Page values cached under the data version (portfolio/datacache.py) and unbound forms
rendered once (portfolio/formcache.py): a write shows on the next request, the cached
pages issue a fixed number of queries whatever the size of the book, and they answer with
Redis down.

Transactional: the version is bumped when a write commits, as in production."""

from __future__ import annotations

import pytest
from django import forms
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext, override_settings
from django.utils import timezone

from engagement.forms import PersonaForm
from portfolio import datacache
from portfolio.models import Account
from tests.factories import AccountFactory, ContactFactory, UserFactory
from tests.integration.test_dashboard import bulk_accounts

pytestmark = pytest.mark.django_db(transaction=True)
REDIS_DOWN = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:9/0",  # the discard port: nothing answers
    }
}


@pytest.fixture(autouse=True)
def _empty_cache():
    cache.clear()


def _get(client, url: str):
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return response, len(queries)


def test_dashboard_figures_are_cached_with_a_fixed_query_count(client):
    warm_counts = []
    for n in (10, 500):
        tam = UserFactory(role="TAM")
        bulk_accounts(tam, n, prefix=f"Size {n}")
        client.force_login(tam)
        first, cold = _get(client, "/")
        second, warm = _get(client, "/")
        assert second.context["figures"] == first.context["figures"]
        assert second.context["figures"]["count"] == n
        assert second.content.count(b"<svg") == first.content.count(b"<svg")
        # Figures (with the renewals by month), P1 target, trend, triage count, review
        # changes and regions come from the cache: only the session, the user with their
        # roles, the table (count and page) and the saved views are read.
        assert cold - warm >= 6
        warm_counts.append(warm)
    assert warm_counts[0] == warm_counts[1] <= 5


def test_a_saved_change_shows_on_the_next_dashboard(client, tam):
    accounts = AccountFactory.create_batch(3, tam=tam, health="green")
    client.force_login(tam)
    assert _get(client, "/")[0].context["figures"]["red"] == 0
    assert _get(client, "/")[0].context["figures"]["red"] == 0  # from the cache
    account = accounts[0]
    account.health = "red"
    account.save()
    assert _get(client, "/")[0].context["figures"]["red"] == 1


def test_a_write_request_makes_the_cache_stale_whatever_it_wrote(client, tam):
    account = AccountFactory(tam=tam, health="green")
    client.force_login(tam)
    assert _get(client, "/")[0].context["figures"]["red"] == 0
    # Set-based SQL sends no signal: the cached figures stay until a write request ends.
    Account.objects.filter(pk=account.pk).update(health="red")
    assert _get(client, "/")[0].context["figures"]["red"] == 0
    response = client.post(
        f"/account/{account.salesforce_id}/activities/",
        {"kind": "call", "occurred_at": "2026-01-05T10:00", "subject": "Check-in"},
    )
    assert response.status_code in (200, 302)
    assert _get(client, "/")[0].context["figures"]["red"] == 1


def test_a_finished_task_makes_the_cache_stale():
    from portfolio.tasks import salesforce_writeback_sweep

    before = datacache.data_version()
    salesforce_writeback_sweep.apply()
    assert datacache.data_version() > before


def test_the_minutely_housekeeping_leaves_the_cache_alone():
    """The heartbeat and the recovery run every minute and write nothing a cached page
    shows: they must not empty every cache every minute."""
    from integrations.tasks import heartbeat, recover

    datacache.data_version_bump()
    before = datacache.data_version()
    heartbeat.apply()
    recover.apply()
    assert datacache.data_version() == before


def test_team_view_is_cached_until_an_account_moves(client, manager, team, tam):
    other = UserFactory(role="TAM")
    team.tams.add(other)
    accounts = AccountFactory.create_batch(4, tam=tam)
    client.force_login(manager)
    counts = {row["tam"].pk: row["count"] for row in _get(client, "/team/")[0].context["rows"]}
    assert counts == {tam.pk: 4, other.pk: 0}
    _, cold = _get(client, "/team/")
    cache.clear()
    _, cold = _get(client, "/team/")
    _, warm = _get(client, "/team/")
    # The workload (1), its panels (3) and the health trend (1) come from the cache: left,
    # the session and the user.
    assert cold - warm >= 5 and warm == 2
    accounts[0].tam = other
    accounts[0].health = "red"
    accounts[0].save()
    response, _ = _get(client, "/team/")
    counts = {row["tam"].pk: row["count"] for row in response.context["rows"]}
    assert counts == {tam.pk: 3, other.pk: 1}
    assert "Today: 0 green, 0 yellow, 0 amber, 1 red" in response.context["health_chart"]


def test_pages_answer_with_redis_down(client, manager, team, tam):
    AccountFactory.create_batch(3, tam=tam, health="red")
    client.force_login(manager)
    with override_settings(CACHES=REDIS_DOWN):
        assert datacache.data_version() is None
        assert _get(client, "/")[0].context["figures"]["red"] == 3
        assert _get(client, f"/tam/{tam.pk}/")[0].context["figures"]["red"] == 3
        assert len(_get(client, "/team/")[0].context["rows"]) == 1


def test_an_unbound_form_renders_once_and_follows_its_choices(tam):
    account = AccountFactory(tam=tam)
    ContactFactory(account=account, name="Ada Lovelace")
    plain = forms.Form.render  # past the cache
    form = PersonaForm(account=account)
    with CaptureQueriesContext(connection) as cold:
        html = str(form)
    assert html == plain(PersonaForm(account=account))
    with CaptureQueriesContext(connection) as warm:
        assert str(PersonaForm(account=account)) == html
    assert len(cold) == len(warm) == 1  # the contacts, read once either way
    ContactFactory(account=account, name="Grace Hopper")
    html = str(PersonaForm(account=account))
    assert "Grace Hopper" in html and "Ada Lovelace" in html
    # A bound form (values, errors) is rendered afresh.
    bound = PersonaForm({"contact": "", "personas": []}, account=account)
    assert bound.is_valid() is False
    assert "errorlist" in str(bound)


def test_agenda_counts_are_cached_until_the_board_changes(client, manager, team, tam):
    from triage.models import TriageIssue

    account = AccountFactory(tam=tam, health="amber")
    client.force_login(manager)
    response, cold = _get(client, "/triage/agenda/")
    assert response.context["missing_issues"].count == 1
    _, warm = _get(client, "/triage/agenda/")
    assert cold - warm == 1  # the sections' counts (one query) come from the cache
    TriageIssue.objects.create(
        account=account, title="At risk", colour="amber", opened_at=timezone.now()
    )
    response, again = _get(client, "/triage/agenda/")
    assert response.context["missing_issues"].count == 0 and again == cold


def test_saved_views_are_cached_until_one_is_saved(client, tam):
    from workspace.services import saved_view_save

    client.force_login(tam)
    _, cold = _get(client, "/")
    _, warm = _get(client, "/")
    response, _ = _get(client, "/")
    assert "Renewals soon" not in response.content.decode()
    saved_view_save(owner=tam, name="Renewals soon", querystring="sort=renewal")
    response, again = _get(client, "/")
    assert "Renewals soon" in response.content.decode()
    assert again == cold and warm < cold


def test_the_account_page_shows_the_usage_panel_rendered_since_the_last_change(client, tam):
    from tests.integration.test_usage_health import _load

    account = AccountFactory(tam=tam)
    _load(account)
    client.force_login(tam)
    page_url = f"/account/{account.salesforce_id}/"
    panel_url = f"/usage/account/{account.salesforce_id}/"
    first, cold = _get(client, page_url)
    assert f'hx-get="{panel_url}" hx-trigger="load"' in first.content.decode()

    panel = client.get(panel_url, HTTP_HX_REQUEST="true").content.decode()
    assert "412 of 1,000 seats active" in panel
    second, warm = _get(client, page_url)
    html = second.content.decode()
    assert "412 of 1,000 seats active" in html and f'hx-get="{panel_url}"' not in html
    assert warm <= cold  # shown without a query (and without a request of its own)

    _load(account, active=(600, 700))  # new usage: an import is a write
    html = _get(client, page_url)[0].content.decode()
    assert f'hx-get="{panel_url}" hx-trigger="load"' in html
    assert (
        "700 of 1,000 seats active"
        in client.get(panel_url, HTTP_HX_REQUEST="true").content.decode()
    )


def test_the_engagement_panel_reads_its_email_templates_and_tams_once(client, tam):
    from engagement.services import checklist

    account = AccountFactory(tam=tam)
    checklist.engagement_start(account=account, kind="new_customer", user=tam)
    client.force_login(tam)
    url = f"/engagement/account/{account.salesforce_id}/"
    _, cold = _get(client, url)
    _, warm = _get(client, url)
    assert cold - warm >= 2  # the picker's templates and the assignable TAMs
