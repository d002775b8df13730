"""Issue 16, point 5: the fakes carry realistic usage. A year of the fake feed
(tests/fakes/usage_feed.py: seasonality, adoption drops, version lag) posted through the
real `POST /api/v1/usage` as NDJSON, then read back as the health engine reads it: the
signals follow the feed's profiles; the same rows as a CSV file through
`manage.py import_usage` store nothing new."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from portfolio.api_tokens import api_token_issue
from tests import factories
from tests.fakes import usage_feed
from triage import health
from usage.models import Release, UsageValue
from usage.selectors import usage_measures_for_accounts

pytestmark = pytest.mark.django_db

MONTHS = 13


@pytest.fixture
def accounts(tam):
    return [factories.AccountFactory(tam=tam) for _ in range(8)]


@pytest.fixture
def releases():
    for major, year in ((15, 2022), (16, 2023), (17, 2024), (18, 2025), (19, 2026)):
        Release.objects.create(version=f"{major}.0", released_on=dt.date(year, 5, 15))


def _feed(accounts) -> tuple[list[usage_feed.AccountProfile], list[dict]]:
    profiles = usage_feed.profiles([a.salesforce_id for a in accounts])
    rows = list(usage_feed.monthly_rows(profiles, last=timezone.localdate(), months=MONTHS))
    return profiles, rows


def test_the_feed_is_realistic_and_deterministic(accounts):
    profiles, rows = _feed(accounts)
    assert rows == list(usage_feed.monthly_rows(profiles, last=timezone.localdate(), months=MONTHS))
    assert [p.drop for p in profiles] == [True, False, False, False, True, False, False, False]
    dropped = profiles[0]
    active = [
        r["value"]
        for r in rows
        if r["account"] == dropped.salesforce_id and r["metric"] == "active_users"
    ]
    assert len(active) == MONTHS and active[-1] < 0.7 * active[-2]
    # Not a constant: the months differ (seasons, growth).
    assert len(set(active)) > MONTHS // 2


def test_the_feed_posted_through_the_api_gives_the_signals_of_its_profiles(
    tam, accounts, releases, tmp_path
):
    profiles, rows = _feed(accounts)
    _, token = api_token_issue(user=tam, name="usage pipeline", scope="write", days=30)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    body = usage_feed.as_ndjson(rows)
    response = client.post("/api/v1/usage", body, content_type="application/x-ndjson")
    assert response.status_code == 200, response.content
    answer = response.json()
    assert (answer["accepted"], answer["created"], answer["rejected"]) == (len(rows), len(rows), [])
    assert UsageValue.objects.count() == len(rows) == len(accounts) * MONTHS * 6

    today = timezone.localdate()
    measured = usage_measures_for_accounts(accounts, today=today)
    last = {
        (r["account"], r["metric"]): r["value"] for r in rows if r["period"] == f"{today:%Y-%m}"
    }
    for account, profile in zip(accounts, profiles, strict=True):
        signals = health.usage_signals(*measured[account.pk])
        sf = profile.salesforce_id
        assert signals["adoption_dropped"][0] is profile.drop, signals["adoption_dropped"]
        assert signals["major_releases_behind"][0] == profile.majors_behind
        assert signals["tickets_per_month"][0] == last[sf, "tickets_opened"]
        share = last[sf, "active_users"] / last[sf, "licensed_seats"]
        expected = "low" if share < 0.5 else "healthy" if share >= 0.7 else None
        assert signals.get("user_adoption", (None,))[0] == expected
        if expected:
            evidence = f"{last[sf, 'active_users']:,} of {last[sf, 'licensed_seats']:,} seats"
            assert evidence in signals["user_adoption"][1]

    # The same rows again, as a file through the command: nothing new, nothing changed.
    path = tmp_path / "usage.csv"
    path.write_bytes(usage_feed.as_csv(rows))
    call_command("import_usage", str(path), "--no-assess")
    again = client.post("/api/v1/usage", body, content_type="application/x-ndjson").json()
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, len(rows))
    assert UsageValue.objects.count() == len(rows)
