"""`POST /api/v1/usage` (issue 16, DESIGN.md): JSON or NDJSON batches, token auth, per-row
errors, idempotent, scoped to the accounts the caller may see."""

from __future__ import annotations

import json

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from integrations.models import QuarantinedRecord, Source
from portfolio.api_tokens import api_token_issue
from tests import factories
from usage.models import UsageValue
from usage.selectors import month_start

pytestmark = pytest.mark.django_db

URL = "/api/v1/usage"


def _client(user, scope: str = "write") -> APIClient:
    _, text = api_token_issue(user=user, name="usage feed", scope=scope, days=30)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {text}")
    return client


@pytest.fixture
def account(tam):
    return factories.AccountFactory(tam=tam)


def _rows(account) -> list[dict]:
    month = f"{month_start(timezone.localdate()):%Y-%m}"
    return [
        {"account": account.salesforce_id, "period": month, "metric": "active_users", "value": 412},
        {
            "account": account.salesforce_id,
            "period": month,
            "metric": "licensed_seats",
            "value": 1000,
        },
        {"account": account.salesforce_id, "period": month, "metric": "version", "value": "17.3"},
    ]


def test_a_json_batch_is_stored_and_a_rerun_is_unchanged(tam, account):
    client = _client(tam)
    response = client.post(URL, {"rows": _rows(account)}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert (body["accepted"], body["created"], body["unchanged"], body["rejected"]) == (
        3,
        3,
        0,
        [],
    )
    again = client.post(URL, {"rows": _rows(account)}, format="json").json()
    assert (again["accepted"], again["created"], again["unchanged"]) == (3, 0, 3)
    assert UsageValue.objects.count() == 3


def test_ndjson_with_a_malformed_line_stores_the_good_ones_and_names_the_bad(tam, account):
    lines = [json.dumps(r) for r in _rows(account)]
    lines.insert(1, "{not json")
    lines.append(json.dumps({**_rows(account)[0], "period": "2026-13"}))
    response = _client(tam).post(URL, "\n".join(lines), content_type="application/x-ndjson")
    assert response.status_code == 200
    body = response.json()
    assert body["accepted"] == 3 and body["rejected_count"] == 2
    assert [r["index"] for r in body["rejected"]] == [1, 4]
    assert "row" in body["rejected"][0]["errors"]
    assert body["rejected"][1]["errors"] == {
        "period": ["Must be YYYY-MM (a month) or YYYY-MM-DD (a day)."]
    }
    assert QuarantinedRecord.objects.filter(source=Source.USAGE).count() == 2


def test_every_row_rejected_is_a_400_with_per_row_errors(tam, account):
    rows = [{**r, "metric": "nope"} for r in _rows(account)]
    response = _client(tam).post(URL, {"rows": rows}, format="json")
    assert response.status_code == 400
    errors = response.json()["rejected"][0]["errors"]
    assert errors["metric"][0].startswith("Unknown metric; the defined ones are: active_users")


@pytest.mark.parametrize(
    "body", [{"rows": "x"}, {"rows": []}, {"data": []}, [1, 2]], ids=["str", "empty", "key", "list"]
)
def test_a_body_that_is_not_a_batch_is_a_400_naming_rows(tam, body):
    response = _client(tam).post(URL, body, format="json")
    assert response.status_code == 400
    assert "rows" in response.json()


def test_accounts_outside_the_callers_book_are_rejected_not_written(tam, account):
    other = factories.AccountFactory()
    rows = _rows(account) + [{**_rows(other)[0]}]
    body = _client(tam).post(URL, {"rows": rows}, format="json").json()
    assert body["accepted"] == 3
    assert body["rejected"][0]["errors"]["account"] == [
        "No account with this Salesforce id that you may see."
    ]
    assert not UsageValue.objects.filter(account_id=other.pk).exists()


def test_a_read_only_token_or_no_token_may_not_write(tam, account):
    assert (
        _client(tam, "read").post(URL, {"rows": _rows(account)}, format="json").status_code == 403
    )
    assert APIClient().post(URL, {"rows": _rows(account)}, format="json").status_code in (401, 403)
    assert not UsageValue.objects.exists()
