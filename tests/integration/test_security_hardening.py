"""Issue 13, points 2 (partly), 3, 4, 5 and 6: crafted input, CSV formula injection, open
redirects, secrets on error pages, session lifetime and Cache-Control."""

from __future__ import annotations

import csv
import io
import secrets
import sys
import time

import pytest
from django.test import RequestFactory
from django.views.debug import ExceptionReporter

from tests import factories
from triage.services import issues

pytestmark = pytest.mark.django_db


def test_a_tam_filter_that_is_not_a_number_is_a_400_naming_the_field(client, admin_user):
    client.force_login(admin_user)
    response = client.get("/accounts.csv?tam=abc")
    assert response.status_code == 400
    assert response.content.decode().startswith("tam:")


def test_the_csv_export_neutralises_formulas(client, admin_user):
    """OWASP CSV injection: "=", "+", "-", "@", tab and carriage return start a formula."""
    for i, name in enumerate(
        ['=HYPERLINK("http://evil")', "+1+1", "-2+3", "@SUM(A1)", "\tx", "Plain"]
    ):
        factories.AccountFactory(name=name, salesforce_id=f"001CSV{i:012d}")
    client.force_login(admin_user)
    body = b"".join(client.get("/accounts.csv").streaming_content).decode()
    names = [row["name"] for row in csv.DictReader(io.StringIO(body))]
    assert '\'=HYPERLINK("http://evil")' in names
    assert {"'+1+1", "'-2+3", "'@SUM(A1)", "'\tx", "Plain"} <= set(names)
    assert not any(n[:1] in "=+-@\t\r" for n in names)


def test_the_review_form_does_not_redirect_to_another_site(client, manager, tam, team):
    account = factories.AccountFactory(tam=tam)
    issue = issues.triage_issue_open(
        account=account, user=manager, colour="amber", reason="Champion left."
    )
    client.force_login(manager)
    response = client.post(
        f"/triage/issues/{issue.pk}/review/", {"next": "https://evil.example/steal"}
    )
    assert response.status_code == 302
    assert response["Location"] == f"/triage/issues/{issue.pk}/"
    response = client.post(f"/triage/issues/{issue.pk}/review/", {"next": "/triage/"})
    assert response["Location"] == "/triage/"


def _error_page() -> str:
    """Django's technical 500 page for an error raised here (this frame's locals hold no
    secret, as a view's would not)."""
    request = RequestFactory().get("/boom")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        return ExceptionReporter(request, *sys.exc_info()).get_traceback_html()


def test_error_pages_hide_every_secret_setting(settings):
    # Made at run time: the traceback shows this test's source lines, not these values.
    session, password, redis_password, token = (secrets.token_hex(8) for _ in range(4))
    settings.SALESFORCE_SESSION_ID = f"00Dxx!{session}"
    settings.DATABASE_URL = f"postgres://portfolio:{password}@db:5432/portfolio"
    settings.REDIS_URL = f"redis://:{redis_password}@redis:6379/0"
    settings.GITLAB_TOKEN = f"glpat-{token}"
    html = _error_page()
    for secret in (session, password, redis_password, token):
        assert secret not in html
    assert "SALESFORCE_SESSION_ID" in html  # listed, with its value masked


def test_an_idle_session_ends_and_pages_are_not_stored(client, tam, settings):
    client.force_login(tam)
    response = client.get("/")
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"] and "private" in response["Cache-Control"]
    session = client.session
    session["_seen"] = int(time.time()) - settings.SESSION_IDLE_TIMEOUT_SECONDS - 10
    session.save()
    response = client.get("/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert client.get("/").status_code == 302  # signed out for good


def test_the_session_cookie_lasts_the_absolute_lifetime(client, tam, settings):
    client.force_login(tam)
    client.get("/")
    assert settings.SESSION_COOKIE_AGE == 7 * 24 * 3600
    assert client.session.get_expiry_age() == settings.SESSION_COOKIE_AGE


def _sign_in(client, username, password, address="10.0.0.1"):
    return client.post(
        "/accounts/login/", {"username": username, "password": password}, REMOTE_ADDR=address
    )


@pytest.fixture
def fast_hashing(settings):
    """Each wrong password is hashed once; PBKDF2's cost is not what these tests check."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def test_wrong_passwords_lock_the_user_until_an_admin_unlocks(client, tam, settings, fast_hashing):
    tam.set_password("the-right-one-42")
    tam.save()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert _sign_in(client, tam.username, "wrong").status_code == 200  # the form again
    assert _sign_in(client, tam.username, "wrong").status_code == 429  # the limit reached
    locked = _sign_in(client, tam.username, "the-right-one-42")
    assert locked.status_code == 429
    assert "Sign-in locked" in locked.content.decode()
    assert "_auth_user_id" not in client.session
    # From another address too: the lock is on the user.
    assert _sign_in(client, tam.username, "the-right-one-42", "10.0.0.2").status_code == 429

    from axes.utils import reset

    reset(username=tam.username)  # what the admin's unlock does
    assert _sign_in(client, tam.username, "the-right-one-42").status_code == 302


def test_one_address_guessing_many_users_is_locked(client, settings, fast_hashing):
    users = [factories.UserFactory(role="TAM") for _ in range(settings.AXES_FAILURE_LIMIT)]
    for user in users:
        _sign_in(client, user.username, "wrong", "10.9.9.9")
    other = factories.UserFactory(role="TAM")
    other.set_password("fine-password-42")
    other.save()
    assert _sign_in(client, other.username, "fine-password-42", "10.9.9.9").status_code == 429
    assert _sign_in(client, other.username, "fine-password-42", "10.1.1.1").status_code == 302


def test_the_api_is_rate_limited_per_user(client, tam, monkeypatch):
    from django.core.cache import cache
    from rest_framework.throttling import SimpleRateThrottle

    # The rates are read when the throttle classes are defined (DRF), hence the patch.
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {"user": "5/min", "anon": "5/min"})
    cache.clear()
    client.force_login(tam)
    body = {"as_of": "2026-11-22", "region": "US-EAST", "segment": "enterprise"}
    codes = [
        client.post("/api/v1/priority/evaluate", body, content_type="application/json").status_code
        for _ in range(7)
    ]
    assert codes[:5] == [200] * 5 and codes[5:] == [429, 429]


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ("[" * 100_000, 400, "nested too deeply"),
        (
            '{"as_of": "2026-11-22", "emea": ' + '{"a": ' * 5000 + "1" + "}" * 5000 + "}",
            400,
            "emea: JSON nested too deeply",
        ),
        ('{"as_of": "2026-11-22", "arr": "' + "9" * (2 * 1024 * 1024) + '"}', 413, "bytes"),
    ],
    ids=["100k-brackets", "emea-5000-deep", "2MB-body"],
)
def test_crafted_api_bodies_get_a_json_error_not_a_500(client, tam, body, status, says):
    client.force_login(tam)
    response = client.post("/api/v1/priority/evaluate", body, content_type="application/json")
    assert response.status_code == status
    assert response["Content-Type"].startswith("application/json")
    assert says in response.json()["detail"]
