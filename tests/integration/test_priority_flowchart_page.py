"""The account page's US flowchart follows the rule set (issue 14.10): an admin's edit of a
parameter is what the picture says once a decision is made with it, and the picture always
says what the decision's trace says."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from prioritization.models import PriorityDecision, RuleSet
from prioritization.services import priorities_reevaluate, ruleset_save
from tests.factories import AccountFactory, OpportunityFactory
from tests.unit.test_priority_flowchart import boxes

pytestmark = pytest.mark.django_db


def flowchart(client, account) -> str:
    html = client.get(reverse("ui:account", args=[account.salesforce_id])).content.decode()
    match = re.search(r'<svg class="chart chart-flowchart".*?</svg>', html, re.S)
    assert match, "no flowchart on the page"
    return match.group(0)


def test_editing_the_uptier_window_changes_the_picture(client, tam, admin_user):
    """ "upgrade[Open up-tier opp closing in next 6 months]-- Yes -->p1" with the window an
    admin set: 9 months takes in an up-tier closing in 8."""
    account = AccountFactory(tam=tam)  # US-EAST Enterprise: us_enterprise
    OpportunityFactory(
        account=account, type="Up-tier", close_date=timezone.localdate() + dt.timedelta(days=240)
    )
    priorities_reevaluate(cause="manual")
    client.force_login(tam)
    assert "Open up-tier opportunity closing in the next 6 months?" in boxes(
        flowchart(client, account)
    )

    ruleset = RuleSet.objects.get(region_id="US-EAST", segment="enterprise")
    ruleset.uptier_window_months = 9
    ruleset_save(ruleset=ruleset, changed_by=admin_user)
    priorities_reevaluate(cause="manual")
    decision = PriorityDecision.objects.filter(account=account).latest("decided_at", "id")
    assert (decision.priority, decision.decided_by) == (1, "uptier_opportunity")
    after = flowchart(client, account)
    assert "Open up-tier opportunity closing in the next 9 months?" in boxes(after)
    assert "6 months" not in after
    assert decision.trace[3]["question"] == "Open up-tier opportunity closing in the next 9 months?"


def test_the_picture_is_the_rule_set_version_that_decided(client, tam, admin_user):
    """An edit that moves nothing writes no new decision (only changes are written), so the
    stored trace still asks "> 2 h"; the picture says the same, not the new "> 3 h"."""
    account = AccountFactory(tam=tam)  # P2 by default, every question asked
    priorities_reevaluate(cause="manual")
    ruleset = RuleSet.objects.get(region_id="US-EAST", segment="enterprise")
    ruleset.stage_adoption_hours = 3
    ruleset_save(ruleset=ruleset, changed_by=admin_user)
    priorities_reevaluate(cause="manual")
    assert PriorityDecision.objects.filter(account=account).count() == 1
    client.force_login(tam)
    picture = flowchart(client, account)
    assert "Stage adoption this quarter requiring > 2 h of TAM time per week?" in boxes(picture)
    assert "&gt; 3 h" not in picture
