"""Rule sets in Django admin: the what-if preview before saving, then a new version."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from prioritization.models import RuleSet
from prioritization.rules import MODEL_PARAMS, PRE_PARAMS
from prioritization.services import priorities_reevaluate
from tests.factories import AccountFactory, region

pytestmark = pytest.mark.django_db
US_ONLY = tuple(n for n in MODEL_PARAMS["us_enterprise"] if n not in PRE_PARAMS)
COMMERCIAL_ONLY = tuple(n for n in MODEL_PARAMS["commercial"] if n not in PRE_PARAMS)


def form_data(ruleset: RuleSet, **changes) -> dict:
    data = {}
    for name in ("region", "segment", *RuleSet.VERSIONED_FIELDS):
        value = getattr(ruleset, "region_id" if name == "region" else name)
        if isinstance(value, bool):
            if value:
                data[name] = "on"
            continue
        data[name] = "" if value is None else str(value)
    # The read-only version history inline: one form per stored version (the data
    # migrations may have written more than the first).
    versions = list(ruleset.versions.order_by("-version"))
    data.update(
        {
            "versions-TOTAL_FORMS": str(len(versions)),
            "versions-INITIAL_FORMS": str(len(versions)),
            "versions-MIN_NUM_FORMS": "0",
            "versions-MAX_NUM_FORMS": "1000",
        }
    )
    for i, version in enumerate(versions):
        data[f"versions-{i}-id"] = str(version.pk)
        data[f"versions-{i}-ruleset"] = str(ruleset.pk)
    data.update(changes)
    return data


def test_change_shows_the_whatif_then_saves_a_new_version(client, admin_user, tam):
    ruleset = RuleSet.objects.get(region_id="US-EAST", segment="enterprise")
    # Two accounts with 3 h/week of stage adoption: P1 at > 2 h, P2 at > 4 h.
    movers = AccountFactory.create_batch(2, tam=tam, stage_adoption_hours_per_week=3)
    stay = AccountFactory(tam=tam, churn_risk=True)
    AccountFactory(tam=tam, region=region("US-WEST"), stage_adoption_hours_per_week=3)  # other set
    priorities_reevaluate(cause="manual")
    client.force_login(admin_user)
    url = reverse("admin:prioritization_ruleset_change", args=[ruleset.pk])
    assert client.get(url).status_code == 200

    preview = client.post(url, form_data(ruleset, stage_adoption_hours="4.0"))
    assert preview.status_code == 200
    html = preview.content.decode()
    assert "Preview changes" in html
    assert '<strong id="whatif-p1-to-p2">2</strong>' in html
    assert '<strong id="whatif-p2-to-p1">0</strong>' in html
    for account in movers:
        assert account.name in html
    assert stay.name not in html
    seeded = ruleset.version
    ruleset.refresh_from_db()
    assert (ruleset.version, ruleset.stage_adoption_hours) == (seeded, 2)  # nothing saved yet

    saved = client.post(url, form_data(ruleset, stage_adoption_hours="4.0", _whatif_confirm="1"))
    assert saved.status_code == 302
    ruleset.refresh_from_db()
    assert ruleset.version == seeded + 1 and ruleset.updated_by == admin_user
    version = ruleset.versions.get(version=seeded + 1)
    assert version.created_by == admin_user
    assert version.changes == {"stage_adoption_hours": ["2.0", "4.0"]}
    page = client.get(url).content.decode()
    assert "Version history" in page and "stage_adoption_hours: 2.0 → 4.0" in page


def test_model_change_preview_recomputes_ranks(client, admin_user, tam):
    ruleset = RuleSet.objects.get(region_id="LATAM", segment="enterprise")
    accounts = [
        AccountFactory(tam=tam, region=region("LATAM"), arr=arr, success_plan="objectives",
                       stages_adopted=5)
        for arr in (900_000, 50_000)
    ]  # fmt: skip
    client.force_login(admin_user)
    url = reverse("admin:prioritization_ruleset_change", args=[ruleset.pk])
    html = client.post(url, form_data(ruleset, model="commercial")).content.decode()
    # us_enterprise: both P2; commercial: the largest is top 30 by ARR -> P1.
    assert '<strong id="whatif-p2-to-p1">2</strong>' in html
    assert accounts[0].name in html


def test_invalid_change_shows_the_form_errors_not_the_preview(client, admin_user):
    ruleset = RuleSet.objects.get(region_id="US-EAST", segment="enterprise")
    client.force_login(admin_user)
    url = reverse("admin:prioritization_ruleset_change", args=[ruleset.pk])
    response = client.post(url, form_data(ruleset, uptier_window_months="-3"))
    assert response.status_code == 200
    assert "Preview changes" not in response.content.decode()
    assert "errornote" in response.content.decode()


# --- Each model's own parameters (issue 14.12) -----------------------------------------------


def field_names(html: str) -> set[str]:
    return set(re.findall(r'<(?:input|select|textarea)[^>]* name="([a-z0-9_]+)"', html))


@pytest.mark.parametrize(
    ("region_id", "segment", "shown", "hidden"),
    [
        ("US-EAST", "enterprise", MODEL_PARAMS["us_enterprise"], COMMERCIAL_ONLY),
        ("EMEA", "commercial", MODEL_PARAMS["commercial"], US_ONLY),
        ("EMEA", "enterprise", PRE_PARAMS, US_ONLY + COMMERCIAL_ONLY),
    ],
)
def test_a_rule_set_shows_only_its_models_parameters(
    client, admin_user, region_id, segment, shown, hidden
):
    """Commercial: "Uptier opportunity identified w/ timeline (prefer 9 months or less)" is
    its own window; the US flowchart's "Open up-tier opp closing in next 6 months" is not
    a Commercial parameter and is not offered there."""
    ruleset = RuleSet.objects.get(region_id=region_id, segment=segment)
    client.force_login(admin_user)
    html = client.get(reverse("admin:prioritization_ruleset_change", args=[ruleset.pk]))
    names = field_names(html.content.decode())
    assert set(shown) <= names
    assert not set(hidden) & names
    assert {"p1_target_share", "p1_onboarding", "model"} <= names  # not model parameters


def test_an_edit_of_a_parameter_the_model_ignores_is_not_taken(client, admin_user, tam):
    ruleset = RuleSet.objects.get(region_id="EMEA", segment="commercial")
    AccountFactory(tam=tam, region=region("EMEA"), segment="commercial")
    client.force_login(admin_user)
    url = reverse("admin:prioritization_ruleset_change", args=[ruleset.pk])
    response = client.post(url, form_data(ruleset, uptier_window_months="2"))
    assert "Preview changes" not in response.content.decode()  # no "0 would move"
    ruleset.refresh_from_db()
    assert ruleset.uptier_window_months == 6
    # Its own window is previewed as usual.
    preview = client.post(url, form_data(ruleset, commercial_uptier_window_months="3"))
    assert "Preview changes" in preview.content.decode()


def test_the_add_form_shows_every_group_and_the_trial_reads_as_the_rules_do(client, admin_user):
    """ "... with the exception of the Public Sector that is trialing a TAM-assigned digital
    customer" """
    client.force_login(admin_user)
    html = client.get(reverse("admin:prioritization_ruleset_add")).content.decode()
    assert {*MODEL_PARAMS["us_enterprise"], *MODEL_PARAMS["commercial"]} <= field_names(html)
    assert "on, a TAM-assigned digital-only account is P4 too" in html
    assert "is not P4." not in html  # the pre-issue-14 reading
