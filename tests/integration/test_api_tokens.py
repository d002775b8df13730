"""Issue 13, point 7: API tokens hashed at rest, with a name, a scope and an expiry, shown
once, issued and revoked by their owner on the "API tokens" page."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone
from rest_framework.test import APIClient, APIRequestFactory

from portfolio.api_tokens import WriteScopeRequired, api_token_issue
from portfolio.models import ApiToken
from tests import factories

pytestmark = pytest.mark.django_db

URL = "/api/v1/priority/evaluate"
BODY = {"as_of": "2026-11-22", "region": "US-EAST", "segment": "enterprise"}


def _api(text: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {text}")
    return client


def test_the_page_issues_a_token_shown_once_and_kept_as_a_digest(client, tam):
    client.force_login(tam)
    page = client.post(
        "/settings/api-tokens/", {"name": "weekly report", "scope": "read", "days": "90"}
    )
    assert page.status_code == 200 and "no-store" in page["Cache-Control"]
    html = page.content.decode()
    text = html.split("<pre><code>")[1].split("</code>")[0]
    assert text.startswith("pf_")
    token = ApiToken.objects.get(user=tam)
    assert token.name == "weekly report" and text.split("_", 2)[2] not in token.digest
    assert text not in client.get("/settings/api-tokens/").content.decode()  # once only
    assert _api(text).post(URL, BODY, format="json").status_code == 200
    token.refresh_from_db()
    assert token.last_used_at is not None


def test_a_form_error_keeps_what_was_typed(client, tam):
    client.force_login(tam)
    page = client.post(
        "/settings/api-tokens/", {"name": "kept name", "scope": "root", "days": "90"}
    )
    assert page.status_code == 400
    assert 'value="kept name"' in page.content.decode()
    assert not ApiToken.objects.exists()


def test_a_revoked_or_expired_token_is_refused_with_the_reason(client, tam):
    token, text = api_token_issue(user=tam, name="ci", scope="read", days=30)
    client.force_login(tam)
    assert client.post(f"/settings/api-tokens/{token.pk}/revoke").status_code == 302
    response = _api(text).post(URL, BODY, format="json")
    assert response.status_code == 401 and "revoked" in response.json()["detail"]
    other, text = api_token_issue(user=tam, name="old", scope="read", days=30)
    ApiToken.objects.filter(pk=other.pk).update(expires_at=timezone.now() - dt.timedelta(days=1))
    response = _api(text).post(URL, BODY, format="json")
    assert response.status_code == 401 and "expired" in response.json()["detail"]
    assert _api("pf_nope_nope").post(URL, BODY, format="json").status_code == 401


def test_nobody_revokes_another_users_token(client, tam):
    token, text = api_token_issue(user=tam, name="mine", scope="read", days=30)
    client.force_login(factories.UserFactory(role="TAM"))
    client.post(f"/settings/api-tokens/{token.pk}/revoke")
    assert _api(text).post(URL, BODY, format="json").status_code == 200


def test_a_read_only_token_may_not_store_data(tam):
    read, _ = api_token_issue(user=tam, name="r", scope="read", days=30)
    write, _ = api_token_issue(user=tam, name="w", scope="write", days=30)
    request = APIRequestFactory().post(URL)
    permission = WriteScopeRequired()
    request.auth = read
    assert not permission.has_permission(request, None)
    request.auth = write
    assert permission.has_permission(request, None)
