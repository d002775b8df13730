"""Issue 14.13: people read a rule's name where a decision says what decided it, never the
rule id ("uptier_opportunity", "default_p2"): the account pages, the change list, the admin
list of decisions and the admin's what-if. The API keeps the id (DESIGN.md contract)."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from prioritization.models import PriorityDecision, RuleSet
from prioritization.services import priorities_reevaluate
from tests.factories import AccountFactory, OpportunityFactory
from tests.integration.test_priority_admin import form_data

pytestmark = pytest.mark.django_db


def visible_text(html: str) -> str:
    """The page as read: no tags, so no attribute (data-rule="...") counts."""
    return re.sub(r"<[^>]+>", " ", html)


def test_account_pages_name_the_deciding_rule(client, tam):
    account = AccountFactory(tam=tam)  # settled US account: P2 by default
    priorities_reevaluate(cause="manual")
    assert PriorityDecision.objects.get(account=account).decided_by == "default_p2"
    client.force_login(tam)
    for url in (
        reverse("ui:account", args=[account.salesforce_id]),
        reverse("prioritization:account", args=[account.salesforce_id]),
    ):
        html = client.get(url).content.decode()
        assert 'Decided by <strong class="decided-by">No P1 parameter holds</strong>' in html
        assert "default_p2" not in visible_text(html)


def test_the_change_list_names_the_rule(client, tam):
    account = AccountFactory(tam=tam)
    OpportunityFactory(
        account=account, type="Up-tier", close_date=timezone.localdate() + dt.timedelta(days=30)
    )
    priorities_reevaluate(cause="quarterly_review")
    assert PriorityDecision.objects.get(account=account).decided_by == "uptier_opportunity"
    client.force_login(tam)
    html = client.get(reverse("prioritization:index")).content.decode()
    assert "(Up-tier opportunity closing soon, quarterly review," in html
    assert "uptier_opportunity" not in visible_text(html)


def test_admin_lists_decisions_by_rule_name(client, admin_user, tam):
    account = AccountFactory(tam=tam, churn_risk=True)
    priorities_reevaluate(cause="manual")
    client.force_login(admin_user)
    listing = client.get(reverse("admin:prioritization_prioritydecision_changelist"))
    assert listing.status_code == 200
    text = visible_text(listing.content.decode())
    assert "At risk of contraction or churn" in text and "churn_risk" not in text
    decision = PriorityDecision.objects.get(account=account)
    page = client.get(reverse("admin:prioritization_prioritydecision_change", args=[decision.pk]))
    assert page.status_code == 200
    assert "At risk of contraction or churn" in page.content.decode()


def test_whatif_moves_name_the_rules(client, admin_user, tam):
    ruleset = RuleSet.objects.get(region_id="US-EAST", segment="enterprise")
    mover = AccountFactory(tam=tam, stage_adoption_hours_per_week=3)
    priorities_reevaluate(cause="manual")
    client.force_login(admin_user)
    url = reverse("admin:prioritization_ruleset_change", args=[ruleset.pk])
    html = client.post(url, form_data(ruleset, stage_adoption_hours="4.0")).content.decode()
    assert mover.name in html
    assert "P1 (Stage adoption needing TAM time)" in html
    assert "P2 (No P1 parameter holds)" in html
    assert "stage_adoption" not in visible_text(html)
