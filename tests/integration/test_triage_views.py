"""Triage screens: boards (full page and htmx partial), card moves, the account health
panel, the Customer ER agenda with its one-click fixes, and the evaluate API."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tests import factories
from triage.models import CustomerERCall, EventKind, HealthAssessment, IssueStatus, TriageIssue
from triage.services import assessments, issues

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def account(tam, team):
    return factories.AccountFactory(tam=tam, health="amber", name="Acme Inc")


@pytest.fixture
def issue(account):
    return issues.triage_issue_open(
        account=account, user=account.tam, colour="amber", reason="Low adoption"
    )


def make_issues(tam, n: int) -> None:
    for i in range(n):
        acc = factories.AccountFactory(tam=tam, health="red", name=f"Red {i}")
        issues.triage_issue_open(account=acc, user=tam, colour="red", reason="x", churn_class="E&U")


# --- Boards ----------------------------------------------------------------------------------


def test_colours_board_full_page_and_partial(client, tam, issue, django_assert_max_num_queries):
    client.force_login(tam)
    make_issues(tam, 3)
    with django_assert_max_num_queries(8) as full:
        response = client.get(reverse("triage:board_colours"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" in html and 'id="board"' in html and "Acme Inc" in html
    assert html.index('id="col-red"') < html.index('id="col-amber"') < html.index("Acme Inc")
    make_issues(tam, 5)
    with django_assert_max_num_queries(len(full.captured_queries)):
        client.get(reverse("triage:board_colours"))
    response = client.get(reverse("triage:board_colours"), **HX)
    html = response.content.decode()
    assert "<html" not in html and html.lstrip().startswith('<div id="board"')
    assert response["Vary"] and "HX-Request" in response["Vary"]


def test_region_board_groups_by_region(client, tam, issue):
    client.force_login(tam)
    response = client.get(reverse("triage:board_regions"))
    html = response.content.decode()
    assert 'id="col-US-EAST"' in html and 'id="col-LATAM"' in html
    assert html.index('id="col-US-EAST"') < html.index("Acme Inc") < html.index('id="col-EMEA"')


def test_a_tam_sees_only_their_own_cards(client, tam, issue):
    other = factories.UserFactory(role="TAM")
    client.force_login(other)
    assert "Acme Inc" not in client.get(reverse("triage:board_colours")).content.decode()
    assert client.get(reverse("triage:issue", args=[issue.pk])).status_code == 404


def test_moving_a_card_asks_for_the_reason_htmx(client, tam, issue):
    client.force_login(tam)
    url = reverse("triage:issue_move", args=[issue.pk])
    response = client.post(url, {"colour": "red", "reason": "", "churn_class": ""}, **HX)
    html = response.content.decode()
    assert response.status_code == 200
    assert (html.lstrip().startswith("<article") and "Say why" in html) or "required" in html
    assert 'value="red" selected' in html  # keeps what was chosen
    # Red without a churn class: a clear error, typed reason kept.
    response = client.post(
        url, {"colour": "red", "reason": "Cancelling next quarter", "churn_class": ""}, **HX
    )
    html = response.content.decode()
    assert "churn class" in html and "Cancelling next quarter" in html
    issue.refresh_from_db()
    assert issue.colour == "amber"
    response = client.post(
        url, {"colour": "red", "reason": "Cancelling next quarter", "churn_class": "E&A"}, **HX
    )
    assert response["HX-Retarget"] == "#board"
    assert response.content.decode().lstrip().startswith('<div id="board"')
    issue.refresh_from_db()
    assert (issue.colour, issue.churn_class) == ("red", "E&A")
    event = issue.events.get(kind=EventKind.MOVED)
    assert event.reason == "Cancelling next quarter" and event.actor == tam


def test_moving_a_card_full_page(client, tam, issue):
    client.force_login(tam)
    url = reverse("triage:issue_move", args=[issue.pk])
    response = client.post(url, {"colour": "green", "reason": ""})
    assert response.status_code == 400 and "<html" in response.content.decode()
    response = client.post(url, {"colour": "green", "reason": "Renewed, adoption back."})
    assert response.status_code == 302
    issue.refresh_from_db()
    assert issue.status == IssueStatus.CLOSED and issue.colour == "green"
    issue.account.refresh_from_db()
    assert issue.account.health == "green"


def test_a_tam_cannot_move_another_tams_card(client, issue):
    other = factories.UserFactory(role="TAM")
    client.force_login(other)
    response = client.post(
        reverse("triage:issue_move", args=[issue.pk]), {"colour": "green", "reason": "mine"}
    )
    assert response.status_code == 404
    issue.refresh_from_db()
    assert issue.colour == "amber"


def test_moves_need_the_csrf_token(tam, issue):
    client = Client(enforce_csrf_checks=True)
    client.force_login(tam)
    url = reverse("triage:issue_move", args=[issue.pk])
    assert client.post(url, {"colour": "green", "reason": "x"}).status_code == 403
    client.get(reverse("triage:board_colours"))
    token = client.cookies["csrftoken"].value
    response = client.post(url, {"colour": "green", "reason": "x"}, HTTP_X_CSRFTOKEN=token, **HX)
    assert response.status_code == 200


def test_moves_are_post_only(client, tam, issue):
    client.force_login(tam)
    assert client.get(reverse("triage:issue_move", args=[issue.pk])).status_code == 405


# --- Issue page --------------------------------------------------------------------------------


def test_issue_page_update_team_and_review(client, tam, issue):
    client.force_login(tam)
    page = client.get(reverse("triage:issue", args=[issue.pk])).content.decode()
    assert "Salesforce URL" in page and "Reason for Health Score" in page
    assert "Technical Account Management Leader" in page
    response = client.post(reverse("triage:issue_update", args=[issue.pk]), {"body": ""}, **HX)
    assert "errors" in response.content.decode()
    response = client.post(
        reverse("triage:issue_update", args=[issue.pk]), {"body": "Met the VP."}, **HX
    )
    assert "Met the VP." in response.content.decode()
    response = client.post(
        reverse("triage:issue_team", args=[issue.pk]),
        {"role": "product_manager", "name": "Pat PM"},
        **HX,
    )
    assert "Product Manager: Pat PM" in response.content.decode()
    client.post(reverse("triage:issue_review", args=[issue.pk]), **HX)
    issue.refresh_from_db()
    assert not issue.is_new


# --- Account health panel ----------------------------------------------------------------------


def test_health_panel_keeps_typed_input_on_error(client, tam, account):
    client.force_login(tam)
    assessments.health_signals_update(account=account, user=tam, values={"user_adoption": "low"})
    url = reverse("triage:health_set", args=[account.salesforce_id])
    # A date within the plausible range (2000 to ten years ahead: portfolio.fields).
    expires = (timezone.localdate() + dt.timedelta(days=400)).isoformat()
    response = client.post(
        url, {"colour": "green", "override_reason": "", "override_expires_on": expires}, **HX
    )
    html = response.content.decode()
    assert "Say why" in html and f'value="{expires}"' in html
    assert 'value="green" selected' in html
    # The re-rendered form keeps the account page's unique ids.
    assert 'id="id_health_colour"' in html and 'id="id_colour"' not in html
    assert "hx-swap-oob" not in html  # nothing saved: the header badge stays
    response = client.post(
        url, {"colour": "green", "override_reason": "Signed a 3-year deal."}, **HX
    )
    html = response.content.decode()
    assert "Health colour saved" in html and "differs" in html
    # The page header's badge follows without a reload (htmx out-of-band swap).
    assert (
        '<span id="account-health-badge" class="badge health-green" hx-swap-oob="true">Green</span>'
    ) in html
    account.refresh_from_db()
    assert account.health == "green"
    page = client.get(reverse("triage:account", args=[account.salesforce_id]))
    assert page.status_code == 200 and "Signed a 3-year deal." in page.content.decode()


def test_signals_form_reassesses(client, tam, account):
    client.force_login(tam)
    response = client.post(
        reverse("triage:signals", args=[account.salesforce_id]),
        {"no_communication": "true", "tickets_per_month": ""},
    )
    assert response.status_code == 302
    account.refresh_from_db()
    assert account.health == "red"
    assert TriageIssue.objects.get(account=account).colour == "red"
    current = HealthAssessment.objects.get(account=account, is_current=True)
    assert current.reasons[0]["signal"] == "no_communication"


def test_open_issue_from_the_account_panel(client, tam, account):
    client.force_login(tam)
    url = reverse("triage:issue_open", args=[account.salesforce_id])
    response = client.post(url, {"colour": "red", "reason": "Cancelling"}, **HX)
    html = response.content.decode()
    assert "churn class" in html
    assert 'id="id_triage_colour"' in html and 'id="id_colour"' not in html  # unique ids
    response = client.post(url, {"colour": "amber", "reason": "Worried"}, **HX)
    assert "Amber" in response.content.decode()
    assert TriageIssue.objects.filter(account=account, status="open").count() == 1


# --- Customer ER agenda ------------------------------------------------------------------------


def test_agenda_is_for_managers(client, tam):
    client.force_login(tam)
    assert client.get(reverse("triage:agenda")).status_code == 403


def test_agenda_checks_and_one_click_fixes(
    client, manager, tam, team, account, django_assert_max_num_queries
):
    team.region_id = "US-EAST"
    team.save()
    missing = factories.AccountFactory(tam=tam, health="red", name="Red no issue")
    mismatched = factories.AccountFactory(tam=tam, health="yellow", name="Yellow in SF")
    issue = issues.triage_issue_open(account=mismatched, user=tam, colour="amber", reason="x")
    soon = timezone.localdate() + dt.timedelta(days=30)
    factories.AccountFactory(tam=None, name="Unassigned Later", arr=900_000)  # 200 days
    factories.AccountFactory(tam=None, name="Unassigned Big", arr=900_000, renewal_date=soon)
    factories.AccountFactory(tam=None, name="Unassigned Small", arr=10_000, renewal_date=soon)
    client.force_login(manager)
    with django_assert_max_num_queries(14):
        response = client.get(reverse("triage:agenda"))
    html = response.content.decode()
    assert "Red no issue" in html  # amber/red account without an issue
    assert "Acme Inc" in html  # amber, no issue either
    assert "Yellow in SF" in html and "Match Salesforce (yellow)" in html
    assert "Unassigned Big" in html and "Unassigned Small" in html
    assert "Unassigned Later" not in html
    # Filter by ARR (htmx partial).
    response = client.get(reverse("triage:agenda"), {"min_arr": "500000"}, **HX)
    html = response.content.decode()
    assert "<html" not in html and "Unassigned Big" in html
    assert "Unassigned Small" not in html
    # One click: open the missing issue.
    response = client.post(reverse("triage:agenda_fix", args=[missing.salesforce_id]), **HX)
    assert response.status_code == 200
    assert TriageIssue.objects.get(account=missing).colour == "red"
    # One click: match Salesforce's colour (amber issue, yellow account -> closed).
    client.post(reverse("triage:agenda_fix", args=[mismatched.salesforce_id]), **HX)
    issue.refresh_from_db()
    assert issue.colour == "yellow" and issue.status == IssueStatus.CLOSED
    html = client.get(reverse("triage:agenda")).content.decode()
    assert "Match Salesforce" not in html


def test_agenda_new_issues_and_changes_since_the_last_call(client, manager, tam, team, issue):
    client.force_login(manager)
    html = client.get(reverse("triage:agenda")).content.decode()
    assert f'id="new-{issue.pk}"' in html
    response = client.post(
        reverse("triage:issue_review", args=[issue.pk]), {"from": "agenda"}, **HX
    )
    assert response.content == b""
    issue.refresh_from_db()
    assert not issue.is_new
    assessments.health_colour_set(
        account=issue.account, user=tam, colour="red", reason="Cancelling", source="tam"
    )
    html = client.get(reverse("triage:agenda")).content.decode()
    assert "amber → " in html and "Cancelling" in html
    client.post(reverse("triage:agenda_call"), {"notes": "Week 47"})
    assert CustomerERCall.objects.count() == 1
    html = client.get(reverse("triage:agenda")).content.decode()
    assert "No colour changed." in html


def test_other_managers_cannot_fix_accounts_outside_their_teams(client, account):
    other = factories.UserFactory(role="Manager")
    client.force_login(other)
    assert (
        client.post(reverse("triage:agenda_fix", args=[account.salesforce_id])).status_code == 404
    )


# --- API -------------------------------------------------------------------------------------


def test_health_evaluate_api(client, tam):
    client.force_login(tam)
    body = {
        "signals": {
            "user_adoption": "low",
            "use_cases": "not_defined",
            "cadence_attendance": "sometimes_late",
            "ebrs_last_12_months": None,
            "onboarding": True,
        }
    }
    response = client.post(
        "/api/v1/health/evaluate", json.dumps(body), content_type="application/json"
    )
    assert response.status_code == 200
    assert response.json() == {
        "colour": "yellow",
        "score": 1.67,
        "reasons": [
            {"signal": "user_adoption", "colour": "amber", "detail": "Low user adoption"},
            {
                "signal": "use_cases",
                "colour": "yellow",
                "detail": "Lack of clearly defined GitLab use-cases",
            },
            {
                "signal": "cadence_attendance",
                "colour": "yellow",
                "detail": "Occasionally doesn't show up or are late to scheduled cadence calls",
            },
        ],
    }
    assert HealthAssessment.objects.count() == 0  # nothing stored


def test_health_evaluate_api_rejects_bad_values_per_field(client, tam):
    client.force_login(tam)
    body = {
        "signals": {
            "user_adoption": "meh",
            "champion_lost": "yes",
            "tickets_per_month": -3,
            "vibes": True,
        }
    }
    response = client.post(
        "/api/v1/health/evaluate", json.dumps(body), content_type="application/json"
    )
    assert response.status_code == 400
    errors = response.json()["signals"]
    assert (
        set(errors) == {"user_adoption", "champion_lost", "tickets_per_month"} or "vibes" in errors
    )
    missing = client.post("/api/v1/health/evaluate", "{}", content_type="application/json")
    assert missing.status_code == 400 and "signals" in missing.json()


def test_health_evaluate_api_is_strict_json(client, tam):
    """Issue 14.11, DESIGN.md: "a null or absent signal is unknown and does not count"; "400
    with per-field errors on bad input". The same rules as POST /api/v1/priority/evaluate."""
    client.force_login(tam)

    def post(body):
        return client.post(
            "/api/v1/health/evaluate", json.dumps(body), content_type="application/json"
        )

    unknown = post({"signals": {"onboarding": True}, "colour": "green"})
    assert unknown.status_code == 400
    assert unknown.json() == {"colour": ["Unknown field; the valid fields are: signals."]}
    typo = post({"signals": {"champion_lots": True}}).json()["signals"]["champion_lots"]
    assert typo[0].startswith("Unknown signal; the valid signals are: downgrading_or_cancelling,")
    assert "champion_lost" in typo[0]
    for lenient in ("yes", 1, "on"):
        refused = post({"signals": {"champion_lost": lenient}})
        assert refused.status_code == 400 and "champion_lost" in refused.json()["signals"]
    assert post({"signals": {"tickets_per_month": "3"}}).status_code == 400
    nulls = post({"signals": {"champion_lost": None, "user_adoption": None}})
    assert nulls.status_code == 200 and nulls.json()["reasons"] == []
    assert post({"signals": None}).json() == {"signals": ["This field is required."]}


def test_health_evaluate_api_needs_authentication():
    response = Client().post("/api/v1/health/evaluate", "{}", content_type="application/json")
    assert response.status_code in (401, 403)


def test_a_card_offers_its_own_colour_and_a_move_keeps_the_region_filter(client, tam, issue):
    client.force_login(tam)
    region = issue.account.region_id
    html = client.get(reverse("triage:board_colours"), {"region": region}).content.decode()
    assert f'id="move-colour-{issue.pk}"' in html
    card = html[html.index(f'id="move-colour-{issue.pk}"') :]
    assert card.index('value="amber" selected') < card.index("</select>")
    assert 'value="red" selected' not in card[: card.index("</select>")]
    assert f'name="region" value="{region}"' in html

    url = reverse("triage:issue_move", args=[issue.pk])
    move = {"colour": "red", "reason": "Worse", "churn_class": "E&A", "region": region}
    response = client.post(url, move, **HX)
    assert f'name="region" value="{region}"' in response.content.decode()  # re-rendered

    response = client.post(url, {"colour": "amber", "reason": "Better", "region": region})
    assert response.status_code == 302 and response["Location"].endswith(f"?region={region}")
