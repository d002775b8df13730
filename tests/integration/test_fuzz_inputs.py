"""Issue 13, point 2: no input gives a 500. Every POST form the account pages show (read
from the pages themselves, so a new form is fuzzed too) and every field of the JSON API
get values a person or a script might send: empty, huge, malformed, of the wrong type,
unicode. Each answer must be below 500 (a form error, a 400, a redirect, a 403/404)."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests import factories

pytestmark = pytest.mark.django_db

FUZZ = settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)

TEXT_VALUES = st.one_of(
    st.just(""),
    st.text(max_size=40),
    st.integers(min_value=-(10**20), max_value=10**20).map(str),
    st.sampled_from(
        ["abc", "2026-02-30", "9" * 400, "x" * 5000, "-1", "1e309", "NaN", "\x00", "=1+1", "on"]
    ),
)
JSON_VALUES = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(10**30), max_value=10**30),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=30),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=8,
)


class _Forms(HTMLParser):
    """The POST forms of a page: (action, field names)."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[tuple[str, set[str]]] = []
        self._current: tuple[str, set[str]] | None = None

    def handle_starttag(self, tag, attrs):  # type: ignore[no-untyped-def]
        attrs = dict(attrs)
        if tag == "form" and (attrs.get("method") or "").lower() == "post":
            self._current = (attrs.get("action") or "", set())
            self.forms.append(self._current)
        elif (
            tag in ("input", "select", "textarea")
            and self._current
            and attrs.get("name") not in (None, "csrfmiddlewaretoken")
        ):
            self._current[1].add(attrs["name"])

    def handle_endtag(self, tag):  # type: ignore[no-untyped-def]
        if tag == "form":
            self._current = None


def _post_forms(client, pages: list[str]) -> list[tuple[str, list[str]]]:
    found: dict[str, set[str]] = {}
    for page in pages:
        parser = _Forms()
        parser.feed(client.get(page).content.decode())
        for action, names in parser.forms:
            if action.startswith("/") and "logout" not in action:
                found.setdefault(action, set()).update(names)
    return sorted((action, sorted(names)) for action, names in found.items())


@pytest.fixture
def pages(client, tam, team):
    account = factories.AccountFactory(tam=tam, name="Fuzz Co", salesforce_id="001FUZZ0000000AAA")
    factories.ContactFactory(account=account, email="c@fuzz.test")
    admin = factories.UserFactory(role="Admin", is_staff=True, is_superuser=True)
    client.force_login(admin)
    sid = account.salesforce_id
    return [
        f"/account/{sid}/",
        f"/engagement/account/{sid}/",
        f"/triage/account/{sid}/",
        f"/priority/account/{sid}/",
        "/settings/api-tokens/",
        "/triage/agenda/",
    ]


def test_every_post_form_answers_any_input_without_a_500(client, pages):
    forms = _post_forms(client, pages)
    assert len(forms) >= 10, forms  # the pages really have their forms

    @FUZZ
    @given(data=st.data())
    def fuzz(data):
        for action, names in forms:
            values = {name: data.draw(TEXT_VALUES, label=f"{action} {name}") for name in names}
            response = client.post(action, values)
            assert response.status_code < 500, (action, values)

    fuzz()


API_FIELDS = {
    "/api/v1/priority/evaluate": [
        "as_of",
        "model",
        "region",
        "segment",
        "arr",
        "arr_rank",
        "tam_assigned",
        "unmanaged_child",
        "digital_only",
        "onboarding_started",
        "onboarding_completed",
        "uptier_opportunity_close_date",
        "stage_adoption_hours_per_week",
        "infrastructure_change_hours_per_week",
        "churn_risk",
        "health",
        "in_triage",
        "success_plan",
        "critical_project",
        "stages_adopted",
        "key_logo",
        "channel_engagement",
        "nps",
        "emea",
        "exception",
    ],
    "/api/v1/health/evaluate": ["signals"],
}


@pytest.mark.parametrize("url", sorted(API_FIELDS))
def test_every_api_field_answers_any_json_without_a_500(client, tam, url):
    client.force_login(tam)
    base = {"as_of": "2026-11-22", "region": "US-EAST", "segment": "enterprise"}

    @FUZZ
    @given(field=st.sampled_from(API_FIELDS[url]), value=JSON_VALUES, body=JSON_VALUES)
    def fuzz(field, value, body):
        for payload in ({**base, field: value}, body):
            response = client.post(url, payload, content_type="application/json")
            assert response.status_code < 500, (field, payload)
            assert response["Content-Type"].startswith("application/json")

    fuzz()
