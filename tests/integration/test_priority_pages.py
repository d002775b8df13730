"""The priority screens and the panels other pages include: scoping, query counts."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse

from portfolio.models import Account
from prioritization.selectors import (
    changes_for_tam,
    engagement_expectations_for,
    p1_balance,
)
from prioritization.services import priorities_reevaluate
from tests.factories import AccountFactory, UserFactory, region

pytestmark = pytest.mark.django_db


def test_account_page_draws_the_us_flowchart_with_the_answers(client, tam):
    account = AccountFactory(tam=tam, infrastructure_change_hours_per_week=6)
    priorities_reevaluate(cause="manual")
    client.force_login(tam)
    html = client.get(
        reverse("prioritization:account", args=[account.salesforce_id])
    ).content.decode()
    assert 'data-rule="uptier_opportunity"' in html
    assert 'flow-yes flow-decisive" data-rule="infrastructure_change"' in html
    assert "6 h/week of TAM time (threshold &gt; 2 h)" in html
    # Questions after the deciding one are shown as not asked.
    assert 'flow-skipped" data-rule="churn_risk"' in html
    assert "Monthly cadence call (as minimum)" in html  # engagement expected at P1


def test_account_page_is_scoped_and_has_fixed_queries(client, tam, django_assert_max_num_queries):
    mine = AccountFactory(tam=tam)
    other = AccountFactory(tam=UserFactory(role="TAM"))
    priorities_reevaluate(cause="manual")
    client.force_login(tam)
    assert (
        client.get(reverse("prioritization:account", args=[other.salesforce_id])).status_code == 404
    )
    with django_assert_max_num_queries(14):
        assert (
            client.get(reverse("prioritization:account", args=[mine.salesforce_id])).status_code
            == 200
        )


def test_engagement_expectations_follow_the_rule_set_and_priority(tam):
    account = AccountFactory(tam=tam, segment="commercial", priority=2)
    expectations = engagement_expectations_for(account)
    assert expectations["call_frequency"] == "Quarterly or semi-annual meetings"
    assert expectations["qa_channel"] == "Inbound TAM email or Support ticket"
    assert expectations["cadence_days"] == 90
    account.priority = 1
    assert engagement_expectations_for(account)["ebrs_per_year"] == "1-2"
    account.priority = 3
    assert engagement_expectations_for(account)["note"] == "Non-managed child accounts only"


def test_p1_balance_flags_out_of_range_books(tam):
    # US: 1 of 6 at P1 (17%) is outside about 1/3 +/- 10 points.
    AccountFactory.create_batch(5, tam=tam, priority=2)
    AccountFactory(tam=tam, priority=1)
    emea_tam = UserFactory(role="TAM")
    AccountFactory.create_batch(6, tam=emea_tam, priority=1, region=region("EMEA"))
    rows = {(r.tam_id, r.model): r for r in p1_balance([tam, emea_tam])}
    us = rows[(tam.pk, "us_enterprise")]
    assert (us.p1, us.accounts, us.warning) == (1, 6, True)
    emea = rows[(emea_tam.pk, "emea_enterprise")]
    assert (emea.p1, emea.in_range, emea.target) == (6, True, "5-8 P1")
    Account.objects.filter(pk=Account.objects.filter(tam=tam, priority=2).first().pk).update(
        priority=1
    )
    assert p1_balance([tam])[0].in_range is True  # 2 of 6 = 33%


def test_changes_for_tam_lists_the_latest_quarterly_review(tam):
    account = AccountFactory(tam=tam, churn_risk=True)
    AccountFactory(tam=UserFactory(role="TAM"), churn_risk=True)
    priorities_reevaluate(cause="quarterly_review", as_of=dt.date(2026, 8, 1))
    assert [d.account for d in changes_for_tam(tam)] == [account]
    Account.objects.filter(pk=account.pk).update(churn_risk=False)
    priorities_reevaluate(cause="quarterly_review", as_of=dt.date(2026, 11, 1))
    changes = list(changes_for_tam(tam))
    assert [(c.previous_priority, c.priority) for c in changes] == [(1, 2)]


def test_index_shows_changes_balance_and_pending(client, team, manager, tam):
    AccountFactory(tam=tam, churn_risk=True)
    priorities_reevaluate(cause="quarterly_review")
    client.force_login(tam)
    html = client.get(reverse("prioritization:index")).content.decode()
    assert "Priority changes since the last quarterly review" in html and "P1 balance" in html
    client.force_login(manager)
    assert "Priority requests waiting for you" in client.get("/priority/").content.decode()
