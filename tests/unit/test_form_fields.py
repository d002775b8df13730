"""Dates as people type them, unambiguous and plausible; free-text limits (issue 15,
rough edges). No database."""

from __future__ import annotations

import datetime as dt

import pytest
from django import forms
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st

from portfolio.fields import DATE_FORMAT_HELP, REASON_MAX_LENGTH, DateField, max_date, parse_date


class _Form(forms.Form):
    when = DateField(required=False, help_text="When it ends.")
    reason = forms.CharField(max_length=REASON_MAX_LENGTH, widget=forms.Textarea)


def _errors(value: str) -> list[str]:
    form = _Form({"when": value, "reason": "x"})
    form.is_valid()
    return form.errors.get("when", [])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2027-03-01", dt.date(2027, 3, 1)),
        ("1 Mar 2027", dt.date(2027, 3, 1)),
        ("1 March 2027", dt.date(2027, 3, 1)),
        ("March 1, 2027", dt.date(2027, 3, 1)),
        ("25/03/2027", dt.date(2027, 3, 25)),  # only one reading: day/month
        ("03/25/2027", dt.date(2027, 3, 25)),  # only one reading: month/day
        ("25.03.2027", dt.date(2027, 3, 25)),
        ("05/05/2027", dt.date(2027, 5, 5)),  # both readings are the same day
    ],
)
def test_accepted_dates(text, expected):
    assert parse_date(text) == expected
    assert _errors(text) == []


def test_an_ambiguous_date_is_refused_naming_both_readings():
    (error,) = _errors("01/03/2027")
    assert "1 March 2027" in error and "3 January 2027" in error
    assert "2027-01-03" in error  # how to write it


@pytest.mark.parametrize("text", ["1900-01-01", "1999-12-31"])
def test_dates_before_2000_are_refused(text):
    (error,) = _errors(text)
    assert "is not a plausible date here" in error


def test_dates_more_than_ten_years_ahead_are_refused():
    today = timezone.localdate()
    assert _errors(max_date(today).isoformat()) == []
    (error,) = _errors((max_date(today) + dt.timedelta(days=1)).isoformat())
    assert "is not a plausible date here" in error


def test_garbage_is_a_field_error_and_the_format_is_shown():
    (error,) = _errors("next tuesday")
    assert DATE_FORMAT_HELP in error
    form = _Form()
    assert DATE_FORMAT_HELP in form.fields["when"].help_text
    html = str(form["when"])
    assert 'type="date"' in html and 'placeholder="YYYY-MM-DD"' in html


def test_long_text_has_a_limit_the_browser_and_the_server_know():
    form = _Form({"reason": "x" * (REASON_MAX_LENGTH + 1)})
    assert not form.is_valid()
    assert "at most 2000 characters" in form.errors["reason"][0]
    assert f'maxlength="{REASON_MAX_LENGTH}"' in str(form["reason"])


@given(st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2035, 12, 31)))
def test_iso_round_trips(day):
    assert parse_date(day.isoformat()) == day
    assert parse_date(day.strftime("%-d %b %Y")) == day
