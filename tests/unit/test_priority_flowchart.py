"""The US Enterprise flowchart (prioritization/charts.py) is drawn from the rule registry and
the rule set's parameters (issue 14.10): the boxes say what the trace says. No database."""

from __future__ import annotations

import datetime as dt
import html
import re
from dataclasses import replace

import pytest

from prioritization.charts import US_ENTERPRISE_FLOW, flowchart_steps, us_enterprise_flowchart
from prioritization.rules import FLOWS, RULES, AccountFacts, Params, evaluate

AS_OF = dt.date(2026, 11, 22)
US = Params(model="us_enterprise")
SETTLED = AccountFacts(
    as_of=AS_OF,
    tam_assigned=True,
    arr=250_000,
    onboarding_started=dt.date(2025, 1, 10),
    onboarding_completed=dt.date(2025, 3, 1),
)


def boxes(svg: str) -> list[str]:
    """The question of every box as read: its 12 px lines joined (the 10 px line is the
    evidence)."""
    out = []
    for group in re.findall(r'<g class="fc-node[^"]*">(.*?)</g>', svg):
        lines = re.findall(r'font-size="12"[^>]*>([^<]*)</text>', group)
        out.append(html.unescape(" ".join(lines)))
    return out


def svg_of(facts: AccountFacts, params: Params) -> str:
    decision = evaluate(facts, params)
    return str(us_enterprise_flowchart(decision.trace_dicts(), decision.priority, params))


def test_the_boxes_are_the_flow_of_the_registry():
    drawn = FLOWS["pre"] + tuple(
        rule for rule in FLOWS["us_enterprise"] if rule not in ("default_p2", "p2_exception")
    )
    assert drawn == US_ENTERPRISE_FLOW
    steps = flowchart_steps(US)
    assert [rule for rule, _, _ in steps] == list(US_ENTERPRISE_FLOW)
    assert [outcome for _, _, outcome in steps] == [
        f"P{RULES[rule].outcome}" for rule in US_ENTERPRISE_FLOW
    ]
    outcomes = {"P3", "P4", "Priority 1", "Priority 2"}
    questions = [box for box in boxes(svg_of(SETTLED, US)) if box not in outcomes]
    assert questions == [text for _, text, _ in steps] + [RULES["p2_exception"].question_for(US)]


def test_editing_a_parameter_changes_the_picture():
    """ "upgrade[Open up-tier opp closing in next 6 months]" / "stage[Stage adoption this
    quarter requiring >2hrs TAM time per week]" / "onboarding[First 30-45 days of
    onboarding]": the handbook's numbers are the rule set's defaults, and an admin's edit
    is what the picture says (it spelled "next 6 months" and "> 2 h/week" whatever the
    rule set said)."""
    default = boxes(svg_of(SETTLED, US))
    assert "Open up-tier opportunity closing in the next 6 months?" in default
    assert "Stage adoption this quarter requiring > 2 h of TAM time per week?" in default
    edited = replace(
        US,
        uptier_window_months=9,
        stage_adoption_hours=3.5,
        infrastructure_change_hours=4.0,
        onboarding_window_days=30,
    )
    picture = boxes(svg_of(SETTLED, edited))
    assert "Open up-tier opportunity closing in the next 9 months?" in picture
    assert "Stage adoption this quarter requiring > 3.5 h of TAM time per week?" in picture
    assert "Infrastructure change this quarter requiring > 4 h of TAM time per week?" in picture
    assert "Within the first 30 days of onboarding?" in picture
    assert not any("6 months" in box or "> 2 h" in box or "45 days" in box for box in picture)


@pytest.mark.parametrize(
    "params",
    [
        US,
        replace(US, uptier_window_months=12, onboarding_window_days=60),
        replace(US, digital_tam_trial=True),
        replace(US, stage_adoption_hours=0.5, infrastructure_change_hours=10),
    ],
)
@pytest.mark.parametrize(
    "facts",
    [
        SETTLED,
        replace(SETTLED, churn_risk=True),
        replace(SETTLED, digital_only=True),
        replace(SETTLED, uptier_opportunity_close_date=dt.date(2027, 6, 1)),
        replace(SETTLED, onboarding_started=dt.date(2026, 10, 20), onboarding_completed=None),
    ],
)
def test_every_question_the_trace_asked_is_a_box_of_the_picture(facts, params):
    decision = evaluate(facts, params)
    picture = boxes(str(us_enterprise_flowchart(decision.trace_dicts(), decision.priority, params)))
    for step in decision.trace:
        if step.rule != "default_p2":  # drawn as the last "No" edge into Priority 2
            assert step.question in picture


def test_the_public_sector_trial_changes_the_digital_question():
    """ "with the exception of the Public Sector that is trialing a TAM-assigned digital
    customer" """
    assert "Digital-only customer without a TAM?" in boxes(svg_of(SETTLED, US))
    trial = boxes(svg_of(SETTLED, replace(US, digital_tam_trial=True)))
    assert RULES["digital_only"].question_for(replace(US, digital_tam_trial=True)) in trial


def test_the_description_names_the_rules_not_their_ids():
    svg = svg_of(replace(SETTLED, churn_risk=True), US)
    desc = re.search(r"<desc[^>]*>(.*?)</desc>", svg).group(1)
    assert "At risk of contraction or churn (yes)" in desc and "result P1" in desc
    assert "churn_risk" not in desc and "unmanaged_child" not in desc
