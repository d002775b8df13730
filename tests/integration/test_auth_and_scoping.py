"""Every page requires login; a TAM sees their book, a manager their team's, an admin all."""

import pytest
from django.urls import reverse

from portfolio.selectors import accounts_for_user
from tests.factories import PASSWORD, AccountFactory, UserFactory

pytestmark = pytest.mark.django_db


# What every URL answers each role (anonymous included) is walked pattern by pattern in
# tests/integration/test_url_access.py.


def test_home_redirects_to_login_then_shows_the_book(client, tam):
    AccountFactory(name="Acme Inc", tam=tam)
    response = client.get("/")
    assert response.status_code == 302
    response = client.post(reverse("login"), {"username": tam.username, "password": PASSWORD})
    assert response.status_code == 302
    page = client.get("/")
    assert page.status_code == 200
    assert "Acme Inc" in page.content.decode()


def test_tam_sees_only_their_own_accounts(tam):
    other = UserFactory(role="TAM")
    mine = AccountFactory(tam=tam)
    AccountFactory(tam=other)
    assert list(accounts_for_user(tam)) == [mine]


def test_manager_sees_their_teams_accounts_only(team, manager, tam):
    outsider = UserFactory(role="TAM")
    in_team = AccountFactory(tam=tam)
    AccountFactory(tam=outsider)
    assert list(accounts_for_user(manager)) == [in_team]


def test_admin_sees_every_account(admin_user, tam):
    AccountFactory(tam=tam)
    AccountFactory(tam=None)
    assert accounts_for_user(admin_user).count() == 2


def test_user_without_role_sees_nothing():
    nobody = UserFactory()
    AccountFactory()
    assert accounts_for_user(nobody).count() == 0


def test_logout_requires_post(client, tam):
    client.force_login(tam)
    assert client.get(reverse("logout")).status_code == 405
    assert client.post(reverse("logout")).status_code == 302
    assert client.get("/").status_code == 302


def test_csrf_is_enforced_on_login(tam):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    response = strict.post(reverse("login"), {"username": tam.username, "password": PASSWORD})
    assert response.status_code == 403
