"""The sync-runs page: managers and admins, full page and htmx partial, fixed queries."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from integrations.models import QuarantinedRecord, SyncRun, SyncStatus

pytestmark = pytest.mark.django_db

URL = reverse("portfolio:sync_runs")


def make_runs(n: int, *, running: bool = False) -> list[SyncRun]:
    now = timezone.now()
    runs = []
    for i in range(n):
        run = SyncRun.objects.create(
            source="salesforce",
            started_at=now - dt.timedelta(minutes=15 * (n - i)),
            finished_at=now - dt.timedelta(minutes=15 * (n - i)) + dt.timedelta(seconds=42),
            status=SyncStatus.COMPLETED_WITH_ERRORS,
            created_count=10 + i,
            updated_count=2,
            unchanged_count=300,
            quarantined_count=1,
            details={"api_usage": "120/15000", "retries": 2, "relogins": 0},
        )
        QuarantinedRecord.objects.create(
            source="salesforce",
            object_name="Account",
            external_id=f"001Q{i:014d}",
            payload={"Name": f"Broken {i}", "Region__c": "MARS"},
            reason="Region__c is 'MARS', which is not a Portfolio region",
            sync_run=run,
        )
        runs.append(run)
    if running:
        runs.append(
            SyncRun.objects.create(
                source="salesforce", started_at=now, status=SyncStatus.RUNNING, created_count=5
            )
        )
    return runs


@pytest.mark.parametrize("n", [1, 20])
def test_admin_sees_runs_and_quarantine_in_fixed_queries(
    client, admin_user, n, django_assert_max_num_queries
):
    make_runs(n)
    client.force_login(admin_user)

    with django_assert_max_num_queries(8):
        response = client.get(URL)

    assert response.status_code == 200
    html = response.content.decode()
    assert "Sync runs" in html and "<html" in html
    assert "Completed with errors" in html
    assert "42.0 s" in html  # duration
    assert "API calls used 120/15000 · 2 retried" in html
    assert "Broken 0" in html and "not a Portfolio region" in html
    assert f"({n} open)" in html
    assert 'hx-trigger="every 2s"' not in html  # nothing running: no polling


def test_the_quarantine_shows_its_newest_rows_and_a_capped_count(client, admin_user, monkeypatch):
    """Issue 12: every list a person sees is bounded, its count too: past the cap the
    page says "N+" instead of counting a million rows."""
    from integrations import selectors

    make_runs(5)
    client.force_login(admin_user)
    monkeypatch.setattr(selectors, "QUARANTINE_SHOWN", 2)
    assert "(5 open, the 2 newest shown)" in client.get(URL).content.decode()

    monkeypatch.setattr(selectors, "QUARANTINE_COUNT_CAP", 3)
    html = client.get(URL).content.decode()
    assert "(3+ open, the 2 newest shown)" in html
    assert "Broken 4" in html and "Broken 3" in html and "Broken 2" not in html


def test_running_run_makes_the_partial_poll(client, admin_user, django_assert_max_num_queries):
    make_runs(2, running=True)
    client.force_login(admin_user)

    full = client.get(URL).content.decode()
    with django_assert_max_num_queries(8):
        partial = client.get(URL, headers={"HX-Request": "true"})

    assert 'hx-trigger="every 2s"' in full and "in progress" in full
    body = partial.content.decode()
    assert partial.status_code == 200
    assert "<html" not in body and body.lstrip().startswith('<div id="sync-runs"')
    assert 'hx-trigger="every 2s"' in body and "running…" in body
    assert "HX-Request" in partial["Vary"]


def test_tam_gets_403(client, tam):
    make_runs(1)
    client.force_login(tam)
    assert client.get(URL).status_code == 403
    assert client.post(reverse("portfolio:sync_now")).status_code == 403


def test_admin_starts_a_sync_that_is_enqueued_on_commit(
    client, admin_user, settings, django_capture_on_commit_callbacks
):
    settings.SALESFORCE_ENABLED = False
    client.force_login(admin_user)
    response = client.post(reverse("portfolio:sync_now"), follow=True)
    assert "not configured" in response.content.decode()

    settings.SALESFORCE_ENABLED = True
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(reverse("portfolio:sync_now"))
    assert response.status_code == 302
    assert len(callbacks) == 1


def test_demo_runs_are_made_once(client, admin_user):
    from integrations import demo

    demo.populate()
    demo.populate()
    assert SyncRun.objects.filter(trigger="demo").count() == 12
    assert QuarantinedRecord.objects.count() == 2
    client.force_login(admin_user)
    assert "Nimbus Freight" in client.get(URL).content.decode()


def test_bulk_loads_show_what_they_rebuilt_and_what_needs_an_admin(client, manager):
    now = timezone.now()
    SyncRun.objects.create(
        source="salesforce",
        started_at=now,
        finished_at=now,
        status=SyncStatus.SUCCEEDED,
        details={
            "restored_after_stopped_run": {"Opportunity": {"rebuilt": ["a", "b"]}},
            "objects": {
                "User": {"fetched": 2},
                "Account": {
                    "fetched": 9000,
                    "bulk_load": {
                        "set_aside": ["i1", "i2", "fk"],
                        "rebuilt": ["i1", "i2", "fk"],
                        "seconds": 1.24,
                        "problems": ["fk: insert or update violates foreign key constraint"],
                    },
                },
            },
        },
    )
    client.force_login(manager)

    html = client.get(URL).content.decode()

    assert "Opportunity: rebuilt 2 indexes and keys a stopped load set aside" in html
    assert "Account: loaded in bulk, 3 indexes and keys rebuilt in 1.2 s" in html
    assert '<div class="errors">Account: foreign key left NOT VALID: fk: insert' in html


def test_a_manager_sees_the_quarantined_records_of_their_team_only(client, manager, tam, team):
    """Issue 13: "quarantined payloads and their Salesforce ids are shown to admins and to
    managers only for their team's accounts"."""
    from tests import factories

    make_runs(2)  # records of accounts in nobody's book
    mine = factories.AccountFactory(tam=tam, salesforce_id="001MINE00000000AAA")
    QuarantinedRecord.objects.create(
        source="salesforce",
        object_name="Account",
        external_id=mine.salesforce_id,
        payload={"Name": "Team account", "ARR__c": "lots"},
        reason="ARR__c is 'lots'",
    )
    QuarantinedRecord.objects.create(
        source="salesforce",
        object_name="Opportunity",
        external_id="006TEAM0000000AAA",
        payload={"Name": "Team deal", "AccountId": mine.salesforce_id},
        reason="CloseDate is empty",
    )
    client.force_login(manager)
    html = client.get(URL).content.decode()
    assert "Team account" in html and "Team deal" in html
    assert "Broken 0" not in html and "Broken 1" not in html
    assert "(2 open)" in html
