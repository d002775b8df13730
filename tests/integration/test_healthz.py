import pytest
from django.utils import timezone

from integrations.models import SyncRun

pytestmark = pytest.mark.django_db


def test_healthz_is_public_and_reports_database_and_broker(client):
    SyncRun.objects.create(source="salesforce", started_at=timezone.now(), status="succeeded")
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"] == "ok"
    assert body["broker"] == "ok"
    assert body["last_sync"]["salesforce"]["status"] == "succeeded"
    assert body["last_sync"]["gitlab"] is None


def test_healthz_names_a_stopped_broker_with_503(client, settings):
    # A port where nothing listens: the broker is down.
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["down"] == ["broker"]
