"""GET /api/v1/accounts/{salesforce_id}/priority: the stored decision with its trace."""

from __future__ import annotations

import datetime as dt

import pytest
from rest_framework.test import APIClient

from prioritization.models import RuleSet
from prioritization.services import priorities_reevaluate
from tests.factories import AccountFactory, UserFactory

pytestmark = pytest.mark.django_db


def url(account):
    return f"/api/v1/accounts/{account.salesforce_id}/priority"


def client_for(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_returns_the_stored_decision_with_its_trace(tam):
    account = AccountFactory(tam=tam, stage_adoption_hours_per_week=5)
    priorities_reevaluate(cause="manual", as_of=dt.date(2026, 11, 22))
    response = client_for(tam).get(url(account))
    assert response.status_code == 200
    data = response.json()
    assert (data["priority"], data["label"], data["model"]) == (1, "P1", "us_enterprise")
    current = RuleSet.objects.get(region_id="US-EAST", segment="enterprise").version
    assert (data["decided_by"], data["ruleset_version"], data["cause"]) == (
        "stage_adoption",
        current,
        "manual",
    )
    step = next(s for s in data["trace"] if s["rule"] == "stage_adoption")
    assert step == {
        "rule": "stage_adoption",
        "question": "Stage adoption this quarter requiring > 2 h of TAM time per week?",
        "answer": True,
        "evidence": "5 h/week of TAM time (threshold > 2 h)",
    }


def test_not_evaluated_yet_has_an_empty_trace(tam):
    account = AccountFactory(tam=tam)
    data = client_for(tam).get(url(account)).json()
    assert (data["priority"], data["decided_by"], data["trace"]) == (None, None, [])


def test_404_for_an_account_the_user_may_not_see(tam):
    other = AccountFactory(tam=UserFactory(role="TAM"))
    assert client_for(tam).get(url(other)).status_code == 404
    assert client_for(tam).get("/api/v1/accounts/nope/priority").status_code == 404


def test_manager_sees_the_team_account(team, manager, tam):
    account = AccountFactory(tam=tam)
    assert client_for(manager).get(url(account)).status_code == 200


def test_anonymous_is_refused(tam):
    account = AccountFactory(tam=tam)
    assert APIClient().get(url(account)).status_code in (401, 403)
