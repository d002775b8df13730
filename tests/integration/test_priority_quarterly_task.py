"""The quarterly re-evaluation: seeded in django-celery-beat, run by a real worker."""

from __future__ import annotations

import pytest
from django.conf import settings
from django_celery_beat.models import PeriodicTask

from portfolio.models import Account
from prioritization.models import PriorityDecision, PriorityReview
from prioritization.tasks import reevaluate_priorities_quarterly
from tests.factories import AccountFactory, UserFactory


@pytest.mark.django_db
def test_beat_schedule_is_seeded_for_day_one_of_each_fiscal_quarter():
    task = PeriodicTask.objects.select_related("crontab").get(
        task="prioritization.tasks.reevaluate_priorities_quarterly"
    )
    assert task.enabled
    assert settings.FISCAL_YEAR_START_MONTH == 2
    crontab = task.crontab
    assert (crontab.day_of_month, crontab.month_of_year) == ("1", "2,5,8,11")


def test_quarter_months_follow_the_fiscal_year_start():
    from importlib import import_module

    migration = import_module("prioritization.migrations.0003_quarterly_schedule")
    assert migration.quarter_months(2) == "2,5,8,11"
    assert migration.quarter_months(1) == "1,4,7,10"
    assert migration.quarter_months(12) == "12,3,6,9"


@pytest.mark.worker
def test_quarterly_task_runs_on_a_real_worker(celery_worker, django_db_serialized_rollback):
    tam = UserFactory(role="TAM")
    risky = AccountFactory(tam=tam, churn_risk=True)
    calm = AccountFactory(tam=tam)
    worker = celery_worker()
    result = reevaluate_priorities_quarterly.apply_async()
    outcome = result.get(timeout=60)
    assert outcome["evaluated"] == 2 and outcome["changed"] == 2
    assert "reevaluate_priorities_quarterly" in worker.output()
    review = PriorityReview.objects.get(pk=outcome["review_id"])
    assert (review.cause, review.changed) == ("quarterly_review", 2)
    assert dict(Account.objects.values_list("pk", "priority")) == {risky.pk: 1, calm.pk: 2}
    assert set(PriorityDecision.objects.values_list("cause", flat=True)) == {"quarterly_review"}
    # Safe to run twice: nothing changed, nothing written.
    again = reevaluate_priorities_quarterly.apply_async().get(timeout=60)
    assert again["changed"] == 0
    assert PriorityDecision.objects.count() == 2
