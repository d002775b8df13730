"""Issue 15, rough edges: a forbidden page explains and links back; /priority/ and
/priority/exceptions/pending/ are in the navigation for the roles that use them."""

from __future__ import annotations

import pytest

from tests import factories

pytestmark = pytest.mark.django_db


def test_forbidden_page_explains_and_links_back(client, tam):
    client.force_login(tam)
    response = client.get("/team/")
    assert response.status_code == 403
    html = response.content.decode()
    assert "You may not open this page" in html
    assert "The team view is for managers." in html  # the reason the view gave
    assert 'href="/"' in html and "Go to my portfolio" in html
    assert "signed in as" in html and "(Tam)" in html


def test_forbidden_page_for_a_user_without_a_role(client):
    client.force_login(factories.UserFactory())
    html = client.get("/team/").content.decode()
    assert "with no role yet" in html


def _nav(client, url: str = "/") -> str:
    html = client.get(url).content.decode()
    return html[html.index('<nav class="nav"') : html.index("</nav>")]


def test_priority_pages_in_the_navigation_by_role(client, tam, manager):
    client.force_login(tam)
    nav = _nav(client)
    assert 'href="/priority/"' in nav and 'href="/priority/exceptions/pending/"' not in nav
    client.force_login(manager)
    nav = _nav(client)
    assert 'href="/priority/"' in nav and 'href="/priority/exceptions/pending/"' in nav
    sales = factories.UserFactory(role="Sales Management")
    client.force_login(sales)
    nav = _nav(client, "/priority/exceptions/pending/")
    assert 'aria-current="page">Exceptions to decide' in nav
