"""Salesforce record validation (portfolio.sync.records): no database.

"One bad record never aborts a run: it is quarantined with the reason" (DESIGN.md): so a
parser, given anything at all, returns a row or raises Rejected, never another error.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portfolio.sync.records import (
    Rejected,
    SyncContext,
    _parse_account,
    _parse_opportunity,
    _parse_user,
)

CTX = SyncContext(regions={c: c for c in ["US-WEST", "US-EAST", "EMEA", "APAC", "LATAM"]})

GOOD = {
    "Id": "001000000000001AAA",
    "Name": "Acme",
    "ParentId": None,
    "OwnerId": "005000000000001AAA",
    "ARR__c": Decimal("250000.0"),
    "Region__c": "EMEA",
    "Sales_Segment__c": "Public Sector",
    "Technical_Account_Manager__c": "005000000000002AAA",
    "Health_Score__c": "Amber",
    "CSM_Priority__c": 2,
    "Renewal_Date__c": "2027-03-31",
    "Customer_Since__c": None,
    "GitLab_Plan__c": "Ultimate",
    "Digital_Only__c": False,
    "LAM__c": 500,
    "Licensed_Seats__c": 400,
    "SystemModstamp": "2026-11-20T10:00:00.000+0000",
}

anything = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.decimals(allow_nan=False),
    st.text(max_size=300),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


def test_a_good_account_becomes_a_row():
    row = _parse_account(GOOD, CTX)
    assert row[0] == "001000000000001AAA"
    assert row[4] == Decimal("250000.0")
    assert (row[5], row[6], row[8], row[9]) == ("EMEA", "public_sector", "amber", 2)
    assert row[10] == dt.date(2027, 3, 31)
    assert row[-1] == dt.datetime(2026, 11, 20, 10, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("Id", None, "Missing Id"),
        ("ARR__c", "abc", "not a number"),
        ("ARR__c", Decimal("-5"), "must be between 0"),
        ("ARR__c", Decimal("1e15"), "must be between 0"),
        ("Renewal_Date__c", "2027-02-29", "not a real date"),
        ("Region__c", "Atlantis", "not a Portfolio region"),
        ("Sales_Segment__c", None, "not a known segment"),
        ("Health_Score__c", "Blue", "expected Green, Yellow, Amber or Red"),
        ("CSM_Priority__c", 7, "whole number from 1 to 4"),
        ("LAM__c", Decimal("2.5"), "whole number"),
        ("Name", "x" * 300, "at most 255"),
        ("Digital_Only__c", "maybe", "not true or false"),
    ],
)
def test_each_bad_value_is_rejected_with_a_reason(field, value, reason):
    with pytest.raises(Rejected, match=reason):
        _parse_account({**GOOD, field: value}, CTX)


def test_lenient_spellings_are_accepted():
    row = _parse_account(
        {**GOOD, "Region__c": " emea ", "Sales_Segment__c": "enterprise", "CSM_Priority__c": "P1"},
        CTX,
    )
    assert (row[5], row[6], row[9]) == ("EMEA", "enterprise", 1)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(sorted(GOOD)), anything))
def test_any_account_payload_is_a_row_or_a_rejection(overrides):
    try:
        row = _parse_account({**GOOD, **overrides}, CTX)
    except Rejected as exc:
        assert str(exc)  # noqa: PT017 - either outcome is right; hypothesis picks the input
    else:
        assert len(row) == 17 and row[0]


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["Id", "AccountId", "Name", "CloseDate", "Amount", "IsWon", "Email"]),
        anything,
    )
)
def test_any_opportunity_or_user_payload_is_a_row_or_a_rejection(record):
    record = {"SystemModstamp": "2026-11-20T10:00:00.000+0000", **record}
    for parse in (_parse_opportunity, _parse_user):
        with contextlib.suppress(Rejected):  # anything else fails the test
            parse(record, CTX)
