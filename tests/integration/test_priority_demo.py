"""prioritization.demo.populate on the real demo data: every account evaluated with a
trace, a few exception requests, and running it twice duplicates nothing."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from portfolio.models import Account
from prioritization import demo
from prioritization.models import PriorityDecision, PriorityException, PriorityReview

pytestmark = pytest.mark.django_db


def test_demo_evaluates_every_account_and_is_idempotent():
    out = io.StringIO()
    call_command("load_demo", stdout=out)
    assert "prioritization:" in out.getvalue()
    accounts = Account.objects.count()
    assert accounts > 100
    assert PriorityDecision.objects.values("account").distinct().count() == accounts
    assert not Account.objects.filter(priority__isnull=True).exists()
    statuses = set(PriorityException.objects.values_list("status", flat=True))
    assert statuses == {"pending", "approved", "rejected"}
    assert PriorityException.objects.filter(kind="emea_proposal").exists()
    counts = (
        PriorityDecision.objects.count(),
        PriorityException.objects.count(),
        PriorityReview.objects.count(),
    )
    demo.populate(stdout=io.StringIO())
    assert (
        PriorityDecision.objects.count(),
        PriorityException.objects.count(),
        PriorityReview.objects.count(),
    ) == counts
