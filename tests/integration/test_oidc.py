"""Company sign-in (OIDC): the whole authorization code flow over real HTTP against the
loopback provider in tests/fakes/oidc.py; the browser's part is played by Django's test
client (Portfolio) and `requests` (the provider's authorize page)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.urls import reverse

from portfolio.roles import role_of
from tests import factories
from tests.fakes.oidc import CLIENT_ID, CLIENT_SECRET, fake_oidc  # noqa: F401 - fixture
from tests.integration.test_settings import PRODUCTION, SETUP, run

pytestmark = pytest.mark.django_db

User = get_user_model()


def start(client, next_url: str | None = None, **extra) -> str:
    """Portfolio's OIDC login URL -> the provider's authorize URL."""
    url = reverse("oidc_authentication_init")
    response = client.get(url, {"next": next_url} if next_url else {}, **extra)
    assert response.status_code == 302
    return response["Location"]


def authorize(authorize_url: str) -> str:
    """The provider signs the user in: its redirect back to Portfolio, as path?query."""
    response = requests.get(authorize_url, allow_redirects=False, timeout=10)
    assert response.status_code == 302, response.text
    callback = urlsplit(response.headers["Location"])
    assert f"{callback.scheme}://{callback.netloc}" == "http://testserver"
    return f"{callback.path}?{callback.query}"


def sign_in(client, next_url: str | None = None, **extra):
    return client.get(authorize(start(client, next_url, **extra)), **extra)


def signed_in_user(client):
    return User.objects.get(pk=client.session["_auth_user_id"])


def group_names(user) -> set[str]:
    return set(user.groups.values_list("name", flat=True))


def test_sign_in_creates_the_user_with_the_mapped_groups(client, fake_oidc):  # noqa: F811
    fake_oidc.sign_in("Dana.Scully@Example.com", groups=["cs-tams", "everyone"], given_name="Dana")

    authorize_url = start(client)
    parts = urlsplit(authorize_url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{fake_oidc.url}/authorize"
    params = parse_qs(parts.query)
    assert params["client_id"] == [CLIENT_ID]
    assert params["state"][0] and params["nonce"][0]
    assert params["code_challenge_method"] == ["S256"]
    response = client.get(authorize(authorize_url))

    assert response.status_code == 302
    assert response["Location"] == reverse("ui:home")
    user = signed_in_user(client)
    assert user.email == "Dana.Scully@example.com"  # Django lower-cases the domain
    assert user.username == "dana.scully@example.com"
    assert user.first_name == "Dana"
    assert not user.has_usable_password()
    assert group_names(user) == {"TAM"}
    assert role_of(user) == "tam"
    # The code went over real HTTP with the client secret and the PKCE verifier.
    (token_form,) = fake_oidc.state.token_requests
    assert token_form["client_secret"] == CLIENT_SECRET
    assert len(token_form["code_verifier"]) >= 43
    assert ("GET", "/jwks") in fake_oidc.state.requests
    assert ("GET", "/userinfo") in fake_oidc.state.requests
    assert client.get(reverse("ui:home")).status_code == 200


def test_next_is_kept_through_the_provider(client, fake_oidc):  # noqa: F811
    fake_oidc.sign_in("tam@example.com", groups=["cs-tams"])
    response = sign_in(client, next_url="/triage/")
    assert response["Location"] == "/triage/"


def test_an_unverified_email_is_refused(client, fake_oidc):  # noqa: F811
    factories.UserFactory(username="mulder", email="fox.mulder@example.com", role="Admin")
    fake_oidc.sign_in("fox.mulder@example.com", email_verified=False, groups=["portfolio-admins"])

    response = sign_in(client)

    assert response.status_code == 302
    assert response["Location"] == reverse("login")
    assert "_auth_user_id" not in client.session
    assert not User.objects.filter(username="fox.mulder@example.com").exists()
    page = client.get(reverse("login"))
    assert "Sign-in with Acme SSO did not succeed" in page.content.decode()


def test_a_missing_email_verified_claim_is_refused(client, fake_oidc):  # noqa: F811
    fake_oidc.sign_in("someone@example.com", email_verified=None)
    del fake_oidc.state.user["email_verified"]
    assert sign_in(client)["Location"] == reverse("login")
    assert "_auth_user_id" not in client.session


def test_a_wrong_state_is_refused(client, fake_oidc):  # noqa: F811
    fake_oidc.sign_in("tam@example.com", groups=["cs-tams"])
    callback = urlsplit(authorize(start(client)))
    query = parse_qs(callback.query)
    query["state"] = ["forged-state"]

    response = client.get(callback.path, {"code": query["code"][0], "state": "forged-state"})

    assert response.status_code == 400
    assert "_auth_user_id" not in client.session
    assert fake_oidc.state.token_requests == []  # the code was never exchanged


def test_a_callback_without_a_started_sign_in_is_refused(client, fake_oidc):  # noqa: F811
    response = client.get(reverse("oidc_authentication_callback"), {"code": "x", "state": "y"})
    assert response["Location"] == reverse("login")
    assert "_auth_user_id" not in client.session


def test_an_id_token_for_another_client_is_refused(client, fake_oidc):  # noqa: F811
    fake_oidc.sign_in("tam@example.com", groups=["cs-tams"])
    fake_oidc.state.id_token_overrides = {"aud": "someone-else"}
    assert sign_in(client)["Location"] == reverse("login")
    assert "_auth_user_id" not in client.session


def test_an_id_token_from_another_issuer_is_refused(client, fake_oidc):  # noqa: F811
    fake_oidc.sign_in("tam@example.com", groups=["cs-tams"])
    fake_oidc.state.id_token_overrides = {"iss": "https://evil.example.com"}
    assert sign_in(client)["Location"] == reverse("login")
    assert "_auth_user_id" not in client.session


def test_the_provider_refusing_goes_back_to_the_login_page(client, fake_oidc):  # noqa: F811
    fake_oidc.state.user = None  # access_denied
    assert sign_in(client)["Location"] == reverse("login")
    assert "_auth_user_id" not in client.session


def test_an_existing_user_is_matched_by_email_whatever_its_case(client, fake_oidc):  # noqa: F811
    existing = factories.UserFactory(username="jdoe", email="Jane.Doe@Example.com", role="TAM")
    fake_oidc.sign_in("jane.doe@example.COM", groups=["cs-tams"])

    sign_in(client)

    assert signed_in_user(client) == existing
    assert User.objects.filter(email__iexact="jane.doe@example.com").count() == 1
    existing.refresh_from_db()
    assert existing.has_usable_password()  # the password login still works


def test_provider_groups_change_the_role_at_the_next_sign_in(client, fake_oidc):  # noqa: F811
    fake_oidc.sign_in("lead@example.com", groups=["cs-tams"])
    sign_in(client)
    user = signed_in_user(client)
    assert group_names(user) == {"TAM"}
    # A group the provider does not decide (not in OIDC_ROLE_GROUPS) stays as set.
    user.groups.add(Group.objects.get(name="Sales Management"))

    client.logout()
    fake_oidc.sign_in("lead@example.com", groups=["cs-managers", "portfolio-admins"])
    sign_in(client)
    assert signed_in_user(client) == user
    assert group_names(user) == {"Manager", "Admin", "Sales Management"}
    assert role_of(User.objects.get(pk=user.pk)) == "admin"
    assert User.objects.get(pk=user.pk).is_staff  # the Admin role opens Django admin

    client.logout()
    fake_oidc.sign_in("lead@example.com", groups=[])
    sign_in(client)
    assert group_names(user) == {"Sales Management"}
    assert not User.objects.get(pk=user.pk).is_staff


def test_unknown_users_are_refused_when_creation_is_off(client, fake_oidc, settings):  # noqa: F811
    settings.OIDC_CREATE_USER = False
    fake_oidc.sign_in("stranger@example.com", groups=["cs-tams"])
    assert sign_in(client)["Location"] == reverse("login")
    assert not User.objects.filter(email__iexact="stranger@example.com").exists()


def test_an_inactive_user_is_refused(client, fake_oidc):  # noqa: F811
    factories.UserFactory(username="gone", email="gone@example.com", is_active=False)
    fake_oidc.sign_in("gone@example.com", groups=["cs-tams"])
    assert sign_in(client)["Location"] == reverse("login")
    assert "_auth_user_id" not in client.session


def test_the_login_page_offers_the_provider(client, fake_oidc):  # noqa: F811
    page = client.get(reverse("login"), {"next": "/triage/"}).content.decode()
    assert "Sign in with Acme SSO" in page
    assert f'href="{reverse("oidc_authentication_init")}?next=/triage/"' in page


def test_password_sign_in_still_works_with_oidc_on(client, fake_oidc):  # noqa: F811
    user = factories.UserFactory(username="pw-user", role="TAM")
    response = client.post(
        reverse("login"), {"username": "pw-user", "password": factories.PASSWORD}
    )
    assert response.status_code == 302
    assert signed_in_user(client) == user
    assert ("POST", "/token") not in fake_oidc.state.requests


def test_a_refused_provider_sign_in_counts_as_a_failure_of_the_address(client, fake_oidc):  # noqa: F811
    from axes.models import AccessAttempt

    fake_oidc.sign_in("unverified@example.com", email_verified=False)
    sign_in(client, REMOTE_ADDR="10.7.7.7")
    (attempt,) = AccessAttempt.objects.filter(ip_address="10.7.7.7")
    assert attempt.failures_since_start == 1


def test_an_address_locked_by_wrong_passwords_cannot_sign_in_through_the_provider(
    client,
    fake_oidc,  # noqa: F811
    settings,
):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    for user in [factories.UserFactory(role="TAM") for _ in range(settings.AXES_FAILURE_LIMIT)]:
        client.post(
            reverse("login"),
            {"username": user.username, "password": "wrong"},
            REMOTE_ADDR="10.8.8.8",
        )
    fake_oidc.sign_in("tam@example.com", groups=["cs-tams"])
    response = sign_in(client, REMOTE_ADDR="10.8.8.8")
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session
    assert sign_in(client, REMOTE_ADDR="10.1.1.1").status_code == 302
    assert signed_in_user(client).email == "tam@example.com"


def test_an_unreachable_provider_is_a_message_not_an_error(client, fake_oidc):  # noqa: F811
    fake_oidc.stop()
    response = client.get(reverse("oidc_authentication_init"))
    assert response["Location"] == reverse("login")
    assert "cannot be reached" in client.get(reverse("login")).content.decode()


def test_with_oidc_off_there_is_no_button_and_no_oidc_urls(client, settings):
    assert settings.OIDC_ENABLED is False
    assert "portfolio.oidc.OIDCBackend" not in settings.AUTHENTICATION_BACKENDS
    assert "Sign in with" not in client.get(reverse("login")).content.decode()
    assert client.get(reverse("oidc_authentication_init")).status_code == 404
    callback = reverse("oidc_authentication_callback")
    assert client.get(callback, {"code": "x", "state": "y"}).status_code == 404


# --- settings (a fresh interpreter each: settings are read once, at import) ------------


def test_issuer_without_client_id_stops_start_up_naming_it():
    result = run(SETUP, **PRODUCTION, OIDC_ISSUER="https://sso.example.com")
    assert result.returncode != 0
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("django.core.exceptions.ImproperlyConfigured")
    assert "OIDC_CLIENT_ID" in last_line


def test_issuer_without_client_secret_stops_start_up_naming_it():
    result = run(
        SETUP, **PRODUCTION, OIDC_ISSUER="https://sso.example.com", OIDC_CLIENT_ID="portfolio"
    )
    assert result.returncode != 0
    assert "OIDC_CLIENT_SECRET" in result.stderr.strip().splitlines()[-1]


def test_malformed_role_groups_stop_start_up_naming_the_variable():
    result = run(SETUP, **PRODUCTION, OIDC_ROLE_GROUPS="Boss=cs-bosses")
    assert result.returncode != 0
    assert "OIDC_ROLE_GROUPS" in result.stderr.strip().splitlines()[-1]


def test_a_configured_provider_starts_and_adds_the_backend_after_axes():
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.AUTHENTICATION_BACKENDS, sorted(s.OIDC_ROLE_GROUPS['TAM']))"
    )
    result = run(
        code,
        **PRODUCTION,
        OIDC_ISSUER="https://sso.example.com/",
        OIDC_CLIENT_ID="portfolio",
        OIDC_CLIENT_SECRET="s3cret",
        OIDC_ROLE_GROUPS="TAM=cs-tams,TAM=emea-tams,Manager=cs-managers",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        "['axes.backends.AxesStandaloneBackend', 'portfolio.auth.RoleBackend', "
        "'portfolio.oidc.OIDCBackend'] ['cs-tams', 'emea-tams']"
    )


def test_an_expired_id_token_is_refused(client, fake_oidc):  # noqa: F811
    import time

    fake_oidc.sign_in("tam@example.com", groups=["cs-tams"])
    fake_oidc.state.id_token_overrides = {
        "exp": int(time.time()) - 600,
        "iat": int(time.time()) - 900,
    }
    assert sign_in(client)["Location"] == reverse("login")
    assert "_auth_user_id" not in client.session


def test_an_id_token_with_a_bad_signature_is_refused(client, fake_oidc):  # noqa: F811
    fake_oidc.sign_in("tam@example.com", groups=["cs-tams"])
    fake_oidc.state.forge_signature = True
    assert sign_in(client)["Location"] == reverse("login")
    assert "_auth_user_id" not in client.session


def test_only_the_allowed_email_domains_sign_in(client, fake_oidc, settings):  # noqa: F811
    settings.OIDC_ALLOWED_EMAIL_DOMAINS = ["example.com"]
    fake_oidc.sign_in("someone@elsewhere.test", groups=["cs-tams"])
    assert sign_in(client)["Location"] == reverse("login")
    assert "_auth_user_id" not in client.session
    fake_oidc.sign_in("tam@example.com", groups=["cs-tams"])
    sign_in(client)
    assert signed_in_user(client).email == "tam@example.com"


def test_local_passwords_can_be_switched_off(client, fake_oidc, settings):  # noqa: F811
    settings.PASSWORD_LOGIN_ENABLED = False
    user = factories.UserFactory(username="pw-only", role="TAM")
    user.set_password("a-good-password-42")
    user.save()
    page = client.get(reverse("login")).content.decode()
    assert 'name="password"' not in page and "Sign in with" in page
    response = client.post(
        reverse("login"), {"username": "pw-only", "password": "a-good-password-42"}
    )
    assert response.status_code == 403 and "_auth_user_id" not in client.session


def test_teams_follow_the_provider_groups_when_mapped(client, fake_oidc, settings):  # noqa: F811
    from portfolio.models import Team

    emea = factories.TeamFactory(name="EMEA Enterprise")
    west = factories.TeamFactory(name="US West")
    settings.OIDC_TEAM_GROUPS = {"EMEA Enterprise": {"cs-emea"}, "US West": {"cs-us-west"}}
    fake_oidc.sign_in("mover@example.com", groups=["cs-tams", "cs-emea"])
    sign_in(client)
    user = signed_in_user(client)
    assert set(Team.objects.filter(tams=user).values_list("name", flat=True)) == {"EMEA Enterprise"}
    client.logout()
    fake_oidc.sign_in("mover@example.com", groups=["cs-tams", "cs-us-west"])
    sign_in(client)
    assert set(Team.objects.filter(tams=user).values_list("name", flat=True)) == {"US West"}
    assert emea.tams.count() == 0 and west.tams.count() == 1
