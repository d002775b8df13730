"""The priority trace on the account page: the US Enterprise flowchart (SVG, path taken
highlighted from the trace's rule ids) and the checklist of the other models."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from prioritization.charts import us_enterprise_flowchart
from prioritization.models import PriorityDecision, ReviewCause
from prioritization.services import priorities_reevaluate
from tests.factories import AccountFactory


def step(rule: str, answer: bool, evidence: str = "") -> dict:
    return {"rule": rule, "question": f"{rule}?", "answer": answer, "evidence": evidence}


def taken_edges(svg: str) -> int:
    return len(re.findall(r'class="fc-edge taken"', svg))


def test_flowchart_highlights_the_path_to_churn_risk():
    trace = [
        step("unmanaged_child", False),
        step("digital_only", False),
        step("onboarding_incomplete", False),
        step("uptier_opportunity", False),
        step("stage_adoption", False),
        step("infrastructure_change", False),
        step("churn_risk", True, "marked at risk of churn"),
    ]
    svg = str(us_enterprise_flowchart(trace, 1))
    assert svg.startswith("<svg") and 'role="img"' in svg and "<title" in svg
    # Six "No" edges down the questions and one "Yes" into Priority 1.
    assert taken_edges(svg) == 7
    assert "marked at risk of churn" in svg
    assert svg.count('class="fc-node fc-final"') == 1
    assert "Path taken: Unmanaged child account (no)" in svg
    assert "At risk of contraction or churn (yes); result P1" in svg
    # Questions after the deciding one are not on the path.
    assert svg.count('class="fc-node fc-taken"') == 7


def test_flowchart_default_p2_and_p2_exception():
    no_to_all = [
        step(r, False)
        for r in (
            "unmanaged_child",
            "digital_only",
            "onboarding_incomplete",
            "uptier_opportunity",
            "stage_adoption",
            "infrastructure_change",
            "churn_risk",
            "onboarding_window",
            "p1_exception",
        )
    ]
    default = str(us_enterprise_flowchart([*no_to_all, step("default_p2", True)], 2))
    assert taken_edges(default) == 9  # 8 "No" edges between questions + the last "No" to P2
    assert "result P2" in default
    exception = str(
        us_enterprise_flowchart(
            [*no_to_all[:3], step("uptier_opportunity", True), step("p2_exception", True)], 2
        )
    )
    # 3 "No", the "Yes" to P1, the dotted P1 -> P2 exception, its "Yes" to P2.
    assert taken_edges(exception) == 6


def test_flowchart_escapes_evidence():
    svg = str(us_enterprise_flowchart([step("churn_risk", True, "<script>x</script>")], 1))
    assert "<script>" not in svg and "&lt;script&gt;" in svg


@pytest.mark.django_db
def test_account_page_draws_the_stored_us_enterprise_decision(client, tam):
    account = AccountFactory(tam=tam, churn_risk=True)  # US-EAST Enterprise
    priorities_reevaluate(cause=ReviewCause.MANUAL, account_ids=[account.pk])
    decision = PriorityDecision.objects.get(account=account)
    assert (decision.priority, decision.decided_by) == (1, "churn_risk")
    client.force_login(tam)
    html = client.get(reverse("ui:account", args=[account.salesforce_id])).content.decode()
    assert 'class="chart chart-flowchart"' in html
    assert html.count('class="fc-edge taken"') >= 2
    assert 'data-rule="churn_risk"' in html
    assert 'Decided by <strong class="decided-by">At risk of contraction or churn</strong>' in html
    assert 'name="reason"' in html  # the exception request form


@pytest.mark.django_db
def test_other_models_get_a_checklist(client, tam):
    from tests.factories import region

    account = AccountFactory(tam=tam, region=region("EMEA"), org_change=True)
    priorities_reevaluate(cause=ReviewCause.MANUAL, account_ids=[account.pk])
    decision = PriorityDecision.objects.get(account=account)
    assert decision.model == "emea_enterprise"
    client.force_login(tam)
    html = client.get(reverse("ui:account", args=[account.salesforce_id])).content.decode()
    assert "chart-flowchart" not in html
    assert 'class="checklist"' in html and 'data-rule="emea_org_change"' in html
