"""usage.demo.populate: realistic usage that decides the demo's colours; idempotent."""

from __future__ import annotations

import pytest

from tests import factories
from triage import demo as triage_demo
from triage.models import HealthAssessment
from usage import demo
from usage.models import AccountUsage, UsageValue

pytestmark = pytest.mark.django_db


def test_the_demo_colours_are_read_from_usage_and_a_rerun_adds_nothing(tam, team):
    colours = ["red", "amber", "yellow", "green"] * 3
    accounts = [
        factories.AccountFactory(tam=tam, health=c, nps=None, licensed_seats=500) for c in colours
    ]
    triage_demo.populate()
    demo.populate()
    assert AccountUsage.objects.count() == len(accounts)
    rows = UsageValue.objects.count()
    assert rows == len(accounts) * demo.MONTHS * 7
    sources = {
        r.get("source")
        for a in HealthAssessment.objects.filter(is_current=True)
        for r in a.reasons
        if r["signal"] == "user_adoption"
    }
    assert "usage" in sources
    green = next(a for a in accounts if a.health == "green")
    summary = AccountUsage.objects.get(account=green)
    assert summary.adoption >= 0.7 and summary.stages_in_use >= 9
    before = HealthAssessment.objects.count()
    demo.populate()
    assert UsageValue.objects.count() == rows
    assert HealthAssessment.objects.count() == before
