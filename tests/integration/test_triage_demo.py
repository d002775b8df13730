"""triage.demo.populate: deterministic, idempotent, every amber/red account on the board."""

from __future__ import annotations

import pytest

from tests import factories
from triage import demo
from triage.models import HealthAssessment, HealthSignals, IssueStatus, TriageIssue, TriageUpdate

pytestmark = pytest.mark.django_db


def test_populate_is_idempotent_and_fills_the_board(tam, team):
    colours = ["red", "amber", "yellow", "green"] * 3
    accounts = [factories.AccountFactory(tam=tam, health=c, nps=None) for c in colours]
    demo.populate()
    counts = (
        HealthSignals.objects.count(),
        HealthAssessment.objects.count(),
        TriageIssue.objects.count(),
        TriageUpdate.objects.count(),
    )
    open_accounts = set(
        TriageIssue.objects.filter(status=IssueStatus.OPEN).values_list("account_id", flat=True)
    )
    at_risk = {a.pk for a in accounts if a.health in ("red", "amber")}
    assert at_risk <= open_accounts
    assert counts[0] == len(accounts) and counts[3] > 0
    demo.populate()
    assert counts == (
        HealthSignals.objects.count(),
        HealthAssessment.objects.count(),
        TriageIssue.objects.count(),
        TriageUpdate.objects.count(),
    )
