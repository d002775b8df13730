"""Saved views of the accounts table: the table's state (filters, sort, columns) lives in
the query string; a saved view keeps it under a name per user, optionally shared; a shared
view shows the viewer's own book only. The triage board's region filter is in the URL."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.factories import AccountFactory, UserFactory
from ui.forms import COLUMN_KEYS
from workspace.models import SavedView

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


def test_columns_are_part_of_the_query_string(client, tam):
    AccountFactory(tam=tam, name="Acme", region_id="EMEA")
    client.force_login(tam)
    full = client.get("/").content.decode()
    assert '<th scope="col">Region</th>' in full
    html = client.get("/", {"cols": ["priority", "arr"], "sort": "-arr"}, **HTMX)
    body = html.content.decode()
    assert '<th scope="col">Region</th>' not in body and ">ARR</a></th>" in body
    assert html["HX-Push-Url"] == "/?sort=-arr&cols=priority&cols=arr"
    # Every column picked is the default: the URL stays short.
    assert client.get("/", {"cols": COLUMN_KEYS}, **HTMX)["HX-Push-Url"] == "/"
    # An unknown column is dropped, the table still shows.
    assert client.get("/", {"cols": ["bogus"]}).status_code == 200


def test_save_a_view_and_open_it(client, tam):
    client.force_login(tam)
    response = client.post(
        "/views/",
        {"name": " At risk, by ARR ", "querystring": "?health=at_risk&sort=-arr&page=3&x=1"},
    )
    view = SavedView.objects.get(owner=tam)
    assert view.name == "At risk, by ARR"
    # Only the table's valid filters, without the page.
    assert view.querystring == "health=at_risk&sort=-arr"
    assert response.status_code == 302 and response.url == "/?health=at_risk&sort=-arr"
    page = client.get(response.url).content.decode()
    assert 'href="/?health=at_risk&amp;sort=-arr" aria-current="true">At risk, by ARR</a>' in page
    # Saving again under the same name replaces it.
    client.post("/views/", {"name": "At risk, by ARR", "querystring": "health=red"})
    assert SavedView.objects.get(owner=tam).querystring == "health=red"


def test_a_bad_name_comes_back_with_the_error_and_nothing_lost(client, tam):
    client.force_login(tam)
    response = client.post("/views/", {"name": "   ", "querystring": "health=red"})
    assert response.status_code == 400
    assert "Give the view a name." in response.content.decode()
    assert 'value="health=red"' in response.content.decode()
    response = client.post("/views/", {"name": "x" * 200, "querystring": "health=red"}, **HTMX)
    assert response.status_code == 200 and "at most 80 characters" in response.content.decode()
    assert not SavedView.objects.exists()


def test_views_are_per_user_and_shared_ones_show_the_viewers_book(client, tam, manager):
    other = UserFactory(role="TAM")
    AccountFactory(tam=other, name="Not Yours", health="red")
    AccountFactory(tam=tam, name="Yours", health="red")
    SavedView.objects.create(owner=other, name="Private", querystring="health=amber")
    SavedView.objects.create(owner=other, name="Reds", querystring="health=red", shared=True)
    client.force_login(tam)
    page = client.get("/").content.decode()
    assert "Private" not in page and "Reds" in page
    opened = client.get("/?health=red").content.decode()
    assert "Yours" in opened and "Not Yours" not in opened
    # Only the owner deletes a view.
    shared = SavedView.objects.get(name="Reds")
    assert client.post(f"/views/{shared.pk}/delete").status_code == 404
    client.force_login(other)
    assert client.post(f"/views/{shared.pk}/delete", {"next": "/"}).status_code == 302
    assert not SavedView.objects.filter(pk=shared.pk).exists()


def test_saving_needs_the_csrf_token(tam):
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(tam)
    assert csrf_client.post("/views/", {"name": "x", "querystring": ""}).status_code == 403


@pytest.mark.parametrize("n", [2, 60])
def test_the_views_bar_is_bounded_and_one_query(client, tam, n, django_assert_max_num_queries):
    SavedView.objects.bulk_create(
        SavedView(owner=tam, name=f"View {i:03d}", querystring=f"q=v{i}") for i in range(n)
    )
    client.force_login(tam)
    with django_assert_max_num_queries(18):
        page = client.get("/").content.decode()
    assert page.count('saved-view-delete"') == min(n, 30)


def test_the_board_region_filter_is_in_the_url(client, tam):
    client.force_login(tam)
    response = client.get("/triage/", {"region": "EMEA"}, **HTMX)
    assert response.status_code == 200
    page = client.get("/triage/", {"region": "EMEA"}).content.decode()
    assert 'hx-push-url="true"' in page
    assert 'href="/triage/regions/?region=EMEA"' in page
    assert '<option value="EMEA" selected>' in page
