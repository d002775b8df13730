"""Rough edges of issue 15 on the real pages: a 12,000-character reason is refused with a
field error (nothing lost, nothing stored); reasons and subjects carry their limit for the
counter; dates typed US-style are not silently misread; absurd dates are field errors."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from portfolio.fields import REASON_MAX_LENGTH, SUBJECT_MAX_LENGTH
from prioritization.models import PriorityException
from tests.factories import AccountFactory

pytestmark = pytest.mark.django_db


def _request(client, account, **data):
    url = reverse("prioritization:exception_request", args=[account.salesforce_id])
    payload = {"requested_priority": "1", "reason": "A strategic customer with no LAM."}
    return client.post(url, {**payload, **data}, HTTP_HX_REQUEST="true")


def test_a_huge_reason_is_a_field_error_and_the_text_is_kept(client, tam):
    account = AccountFactory(tam=tam)
    client.force_login(tam)
    huge = "word " * 2400  # 12,000 characters
    html = _request(client, account, reason=huge).content.decode()
    assert f"at most {REASON_MAX_LENGTH} characters" in html
    assert "word word word" in html  # what was typed comes back
    assert not PriorityException.objects.exists()


def test_the_account_page_forms_carry_their_limits(client, tam):
    account = AccountFactory(tam=tam)
    client.force_login(tam)
    html = client.get(f"/account/{account.salesforce_id}/").content.decode()
    assert f'maxlength="{REASON_MAX_LENGTH}"' in html  # reasons: exception, health override
    subject = re.search(r'<input[^>]*name="subject"[^>]*>', html).group(0)
    assert f'maxlength="{SUBJECT_MAX_LENGTH}"' in subject and "data-counter" in subject
    assert "Year-month-day, e.g. 2027-03-01" in html  # the date format is shown


@pytest.mark.parametrize(
    ("typed", "error"),
    [
        ("01/03/2027", "could be 3 January 2027 or 1 March 2027"),
        ("1900-01-01", "is not a plausible date here"),
        ("2200-01-01", "is not a plausible date here"),
    ],
)
def test_dates_that_would_be_misread_or_are_absurd_are_field_errors(client, tam, typed, error):
    account = AccountFactory(tam=tam)
    client.force_login(tam)
    html = _request(client, account, expires_on=typed).content.decode()
    assert error in html
    assert not PriorityException.objects.exists()


def test_an_unambiguous_typed_date_is_read_right(client, tam):
    account = AccountFactory(tam=tam)
    client.force_login(tam)
    _request(client, account, expires_on="25/03/2027")
    assert PriorityException.objects.get().expires_on.isoformat() == "2027-03-25"
