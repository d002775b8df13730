"""POST /api/v1/priority/evaluate: the DESIGN.md contract, defaults and per-field errors."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from portfolio.api_tokens import api_token_issue
from prioritization.models import RuleSet
from prioritization.services import ruleset_save

pytestmark = pytest.mark.django_db
URL = "/api/v1/priority/evaluate"

DESIGN_REQUEST = {
    "as_of": "2026-11-22", "model": "us_enterprise", "region": "US-EAST", "segment": "enterprise",
    "arr": 250000, "arr_rank": 12, "tam_assigned": True,
    "unmanaged_child": False, "digital_only": False,
    "onboarding_started": "2026-01-10", "onboarding_completed": "2026-03-01",
    "uptier_opportunity_close_date": None,
    "stage_adoption_hours_per_week": 0, "infrastructure_change_hours_per_week": 0,
    "churn_risk": False, "health": "green", "in_triage": False,
    "success_plan": "objectives", "critical_project": False, "stages_adopted": 3,
    "key_logo": False, "channel_engagement": False, "nps": 20,
    "emea": {"org_change": False, "onboarding": False, "infrastructure_change": False,
             "weekly_engagement_requested": False, "lam_seat_gap": False,
             "expansion_play": False, "tam_handover": False},
    "exception": {"priority": 2, "approved": True},
}  # fmt: skip


@pytest.fixture
def api(tam):
    client = APIClient()
    client.force_authenticate(tam)
    return client


def test_design_example_with_an_uptier_gives_the_design_response(api):
    body = {**DESIGN_REQUEST, "uptier_opportunity_close_date": "2027-01-15", "exception": None}
    response = api.post(URL, body, format="json")
    assert response.status_code == 200
    data = response.json()
    assert set(data) == {"priority", "label", "model", "ruleset_version", "decided_by", "trace"}
    assert (data["priority"], data["label"], data["model"]) == (1, "P1", "us_enterprise")
    current = RuleSet.objects.get(region_id="US-EAST", segment="enterprise").version
    assert (data["ruleset_version"], data["decided_by"]) == (current, "uptier_opportunity")
    assert {
        "rule": "uptier_opportunity",
        "question": "Open up-tier opportunity closing in the next 6 months?",
        "answer": True,
        "evidence": "closes 2027-01-15 (54 days)",
    } in data["trace"]
    assert all(set(step) == {"rule", "question", "answer", "evidence"} for step in data["trace"])


def test_design_example_as_written_is_p2(api):
    data = api.post(URL, DESIGN_REQUEST, format="json").json()
    assert (data["priority"], data["decided_by"]) == (2, "default_p2")


def test_model_is_derived_from_region_and_segment_and_uses_the_current_version(api, admin_user):
    ruleset = RuleSet.objects.get(region_id="EMEA", segment="enterprise")
    seeded = ruleset.version
    ruleset_save(ruleset=ruleset, changed_by=admin_user)
    body = {"as_of": "2026-11-22", "region": "EMEA", "segment": "enterprise",
            "tam_assigned": True, "emea": {"tam_handover": True}}  # fmt: skip
    data = api.post(URL, body, format="json").json()
    assert (data["model"], data["ruleset_version"]) == ("emea_enterprise", seeded + 1)
    assert (data["priority"], data["decided_by"]) == (1, "emea_tam_handover")


def test_only_as_of_and_a_model_are_needed(api):
    data = api.post(URL, {"as_of": "2026-11-22", "model": "commercial"}, format="json").json()
    # Defaults: not TAM-assigned, no objectives captured, no rule set -> version null.
    assert (data["priority"], data["decided_by"], data["ruleset_version"]) == (
        1,
        "commercial_no_objectives",
        None,
    )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"model": "us_west"}, "model"),
        ({"arr": -1}, "arr"),
        ({"as_of": "22/11/2026"}, "as_of"),
        ({"onboarding_started": "2026-13-01"}, "onboarding_started"),
        ({"region": "MARS"}, "region"),
        ({"segment": "smb"}, "segment"),
        ({"health": "blue"}, "health"),
        ({"success_plan": "some"}, "success_plan"),
        ({"stages_adopted": -2}, "stages_adopted"),
        ({"arr_rank": 0}, "arr_rank"),
        ({"exception": {"priority": 3, "approved": True}}, "exception"),
        ({"emea": {"org_change": "perhaps"}}, "emea"),
        ({"onboarding_completed": "2025-01-01"}, "onboarding_completed"),
    ],
)
def test_bad_input_is_400_with_per_field_errors(api, change, field):
    response = api.post(URL, {**DESIGN_REQUEST, **change}, format="json")
    assert response.status_code == 400
    assert field in response.json()


def test_missing_as_of_and_no_model_source(api):
    response = api.post(URL, {"region": "US-EAST"}, format="json")
    assert response.status_code == 400
    assert "as_of" in response.json()
    response = api.post(URL, {"as_of": "2026-11-22"}, format="json")
    assert response.status_code == 400 and "model" in response.json()


def test_token_auth_works_and_anonymous_is_refused(tam):
    _, text = api_token_issue(user=tam, name="script", scope="read", days=30)
    client = APIClient()
    assert client.post(URL, DESIGN_REQUEST, format="json").status_code in (401, 403)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {text}")
    assert client.post(URL, DESIGN_REQUEST, format="json").status_code == 200


def test_nothing_is_stored(api):
    from prioritization.models import PriorityDecision

    api.post(URL, DESIGN_REQUEST, format="json")
    assert not PriorityDecision.objects.exists()


# --- Strict JSON (issue 14.11): the same rules as POST /api/v1/health/evaluate --------------
# DESIGN.md, JSON API: "400 with per-field errors on bad input"; "every other field except
# `as_of` is optional and defaults to false / null / 0 / "none"".

OPTIONAL = [name for name in DESIGN_REQUEST if name not in ("as_of", "model")]


@pytest.mark.parametrize("value", ["yes", "true", "on", 1, 0, "false", [], {}])
@pytest.mark.parametrize("field", ["tam_assigned", "digital_only", "churn_risk", "key_logo"])
def test_a_yes_no_is_a_json_boolean_only(api, field, value):
    response = api.post(URL, {**DESIGN_REQUEST, field: value}, format="json")
    assert response.status_code == 400
    assert response.json() == {field: ["Must be true, false or null."]}


def test_a_nested_yes_no_is_a_json_boolean_only(api):
    emea = api.post(URL, {**DESIGN_REQUEST, "emea": {"org_change": "yes"}}, format="json")
    assert emea.status_code == 400 and "org_change" in emea.json()["emea"]
    body = {**DESIGN_REQUEST, "exception": {"priority": 1, "approved": 1}}
    exception = api.post(URL, body, format="json")
    assert exception.status_code == 400 and "approved" in exception.json()["exception"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("arr", "250000"),
        ("arr", True),
        ("arr_rank", 1.5),
        ("stages_adopted", "3"),
        ("nps", False),
        ("stage_adoption_hours_per_week", "3"),
        ("region", 5),
        ("health", 1),
        ("exception", {"priority": "1", "approved": True}),
        ("exception", {"priority": True, "approved": True}),
    ],
)
def test_numbers_and_choices_are_json_numbers_and_strings(api, field, value):
    response = api.post(URL, {**DESIGN_REQUEST, field: value}, format="json")
    assert response.status_code == 400
    assert set(response.json()) == {field}


def test_null_is_the_same_as_leaving_the_field_out(api):
    as_nulls = {**DESIGN_REQUEST, **dict.fromkeys(OPTIONAL)}
    left_out = {"as_of": DESIGN_REQUEST["as_of"], "model": DESIGN_REQUEST["model"]}
    nulls = api.post(URL, as_nulls, format="json")
    assert nulls.status_code == 200, nulls.json()
    assert nulls.json() == api.post(URL, left_out, format="json").json()
    nested = {**DESIGN_REQUEST, "emea": {"org_change": None}, "exception": None}
    assert api.post(URL, nested, format="json").status_code == 200
    missing = api.post(URL, {**DESIGN_REQUEST, "as_of": None}, format="json")
    assert missing.status_code == 400 and missing.json() == {"as_of": ["This field is required."]}


def test_unknown_fields_are_errors_naming_the_valid_ones(api):
    body = {**DESIGN_REQUEST, "tam_asigned": True, "emea": {"org_chnage": True}}
    response = api.post(URL, body, format="json")
    assert response.status_code == 400
    errors = response.json()
    assert set(errors) == {"tam_asigned", "emea"}
    (message,) = errors["tam_asigned"]
    assert message.startswith("Unknown field; the valid fields are: as_of, model, region,")
    assert all(name in message for name in DESIGN_REQUEST)
    (nested,) = errors["emea"]["org_chnage"]
    assert nested == (
        "Unknown field; the valid fields are: org_change, onboarding, infrastructure_change, "
        "weekly_engagement_requested, lam_seat_gap, expansion_play, tam_handover."
    )
    # Reported together with the other fields' errors.
    both = api.post(URL, {**DESIGN_REQUEST, "arr": -1, "vibes": 3}, format="json").json()
    assert set(both) == {"arr", "vibes"}
