"""integrations.salesforce: the real simple-salesforce client against the fake over HTTPS."""

from __future__ import annotations

import logging
import time

import pytest
import urllib3.exceptions
from django.core.exceptions import ImproperlyConfigured

from integrations import salesforce
from integrations.models import SyncCursor, SyncStatus
from portfolio.models import Account
from portfolio.sync.run import sync_salesforce

COUNT = "SELECT COUNT() FROM Account"


@pytest.fixture
def org(fake_salesforce):
    for i in range(3):
        fake_salesforce.add(
            "Account", Name=f"A{i}", ARR__c=1000.0, Region__c="EMEA", Sales_Segment__c="Commercial"
        )
    return fake_salesforce


def requests_to_query(fake) -> int:
    return sum(1 for _, path in fake.requests if "/query" in path)


def test_session_auth_queries_and_reads_limit_info(org):
    client = salesforce.client()
    assert client.count(COUNT) == 3
    pages = list(client.query_pages("SELECT Id, Name FROM Account ORDER BY Name DESC"))
    assert [r["Name"] for r in pages[0].records] == ["A2", "A1", "A0"]
    assert pages[0].records[0]["attributes"]["type"] == "Account"
    assert client.api_usage() == f"{org.api_used}/{org.api_limit}"


@pytest.mark.parametrize(
    ("status", "code"),
    [(503, None), (500, None), (429, None), (403, "REQUEST_LIMIT_EXCEEDED")],
)
def test_transient_failures_are_retried_then_succeed(org, status, code):
    org.fail_next(status, 2, error_code=code)
    client = salesforce.client()
    assert client.count(COUNT) == 3
    assert client.retries == 2
    assert requests_to_query(org) == 3


def test_retry_after_is_honoured(org):
    org.fail_next(429, 1, retry_after=0.6)
    client = salesforce.client()
    started = time.monotonic()
    assert client.count(COUNT) == 3
    assert time.monotonic() - started >= 0.6


def test_timeouts_are_retried(org, settings):
    settings.SALESFORCE_TIMEOUT_SECONDS = 0.3
    org.timeout_next(1, seconds=1.0)
    client = salesforce.client()
    assert client.count(COUNT) == 3
    assert client.retries == 1


@pytest.mark.parametrize(
    ("soql", "exc"),
    [
        ("SELECT Id FROM Account WHERE", salesforce.SalesforceMalformedRequest),
        ("SELECT Nope FROM Account", salesforce.SalesforceMalformedRequest),
    ],
)
def test_bad_requests_are_not_retried(org, soql, exc):
    client = salesforce.client()
    with pytest.raises(exc) as info:
        client.count(soql)
    assert info.value.content[0]["errorCode"] in ("MALFORMED_QUERY", "INVALID_FIELD")
    assert requests_to_query(org) == 1 and client.retries == 0


def test_404_is_not_retried(org):
    client = salesforce.client()
    with pytest.raises(salesforce.SalesforceResourceNotFound):
        client.update_account("001DOESNOTEXIST0AA", {"Health_Score__c": "Red"})
    assert len([m for m, _ in org.requests if m == "PATCH"]) == 1


def test_retries_give_up_after_the_limit(org, settings):
    settings.SALESFORCE_MAX_RETRIES = 2
    org.fail_next(503, 10)
    client = salesforce.client()
    with pytest.raises(salesforce.SalesforceError):
        client.count(COUNT)
    assert requests_to_query(org) == 3


def test_expired_session_logs_in_again_with_password_auth(org, settings, caplog):
    caplog.set_level(logging.DEBUG)
    org.use_password_auth(settings)
    client = salesforce.client()
    assert org.logins == 1
    org.expire_sessions()

    assert client.count(COUNT) == 3
    assert org.logins == 2 and client.relogins == 1
    # Secrets never reach the logs.
    for secret in [org.password, org.security_token, *org.sessions]:
        assert secret not in caplog.text


def test_expired_session_id_says_what_to_do(org):
    client = salesforce.client()
    org.expire_sessions()
    with pytest.raises(salesforce.SalesforceExpiredSession, match="SALESFORCE_SESSION_ID"):
        client.count(COUNT)


def test_wrong_password_fails_login(org, settings):
    org.use_password_auth(settings)
    settings.SALESFORCE_PASSWORD = "wrong"
    with pytest.raises(salesforce.SalesforceAuthenticationFailed, match="INVALID_LOGIN"):
        salesforce.client()


def test_missing_settings_name_the_variable(settings):
    settings.SALESFORCE_SESSION_ID = "00D!abc"
    settings.SALESFORCE_INSTANCE_URL = ""
    with pytest.raises(ImproperlyConfigured, match="SALESFORCE_INSTANCE_URL"):
        salesforce.client()
    settings.SALESFORCE_SESSION_ID = ""
    settings.SALESFORCE_USERNAME = "someone@example.com"
    settings.SALESFORCE_PASSWORD = ""
    with pytest.raises(ImproperlyConfigured, match="SALESFORCE_PASSWORD"):
        salesforce.client()
    settings.SALESFORCE_USERNAME = ""
    with pytest.raises(ImproperlyConfigured, match="SALESFORCE_SESSION_ID"):
        salesforce.client()


@pytest.mark.django_db
def test_sync_retries_after_429_and_503_then_succeeds(org):
    org.page_size = 2
    org.fail_next(429, 1)
    org.fail_next(503, 2)
    run = sync_salesforce().run
    assert run.status == SyncStatus.SUCCEEDED
    assert Account.objects.count() == 3
    assert run.details["retries"] == 3


@pytest.mark.django_db
def test_sync_logs_in_again_mid_run_with_password_auth(org, settings):
    org.use_password_auth(settings)
    org.page_size = 1
    org.expire_sessions_after(2)  # the session dies while the Account pages are followed

    run = sync_salesforce().run

    assert run.status == SyncStatus.SUCCEEDED
    assert Account.objects.count() == 3
    assert run.details["relogins"] == 1 and org.logins == 2


@pytest.mark.django_db
def test_sync_fails_cleanly_when_salesforce_stays_down(org, settings):
    settings.SALESFORCE_MAX_RETRIES = 1
    org.fail_next(503, 50)
    run = sync_salesforce().run
    assert run.status == SyncStatus.FAILED
    assert "503" in run.error
    assert Account.objects.count() == 0
    assert SyncCursor.objects.filter(position__isnull=False).count() == 0


def test_fake_speaks_relationships_count_and_query_all(org):
    ada = org.add("User", Name="Ada", Email="ada@example.com")
    org.add(
        "Account",
        Name="Owned",
        OwnerId=ada["Id"],
        ARR__c=5.0,
        Region__c="APAC",
        Sales_Segment__c="Commercial",
    )
    client = salesforce.client()
    (page,) = client.query_pages(
        "SELECT Id, Name, Owner.Email, Owner.Name FROM Account WHERE Region__c = 'APAC'"
    )
    owned = page.records[0]
    assert owned["Owner"]["Email"] == "ada@example.com" and owned["Owner"]["Name"] == "Ada"
    assert owned["Owner"]["attributes"]["type"] == "User"
    unowned = next(client.query_pages("SELECT Id, Owner.Email FROM Account WHERE Name = 'A0'"))
    assert unowned.records[0]["Owner"] is None
    assert client.count("SELECT COUNT() FROM Account WHERE ARR__c >= 1000") == 3
    all_rows = list(client.query_pages("SELECT Id FROM Account", include_deleted=True))
    assert all_rows[0].total_size == 4
    assert any("/queryAll/" in path for _, path in org.requests)


def test_fake_enforces_the_api_limit(org):
    org.api_limit = org.api_used + 1
    client = salesforce.client()
    client.count(COUNT)
    client.policy.max_retries = 0
    with pytest.raises(salesforce.SalesforceError) as info:
        client.count(COUNT)
    assert info.value.content[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"


def test_a_connection_dropped_mid_response_is_retried(org):
    org.drop_next(1)
    client = salesforce.client()
    assert client.count(COUNT) == 3
    assert client.retries == 1 and len(org.dropped) == 1
    assert requests_to_query(org) == 2


def test_a_bare_urllib3_protocol_error_is_retried_and_caught_as_an_error():
    exc = urllib3.exceptions.ProtocolError("Connection broken", ConnectionResetError())
    assert salesforce.is_retryable(exc)
    assert isinstance(exc, salesforce.ERRORS)
    attempts = []

    def flaky() -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise exc
        return "ok"

    policy = salesforce.RetryPolicy(
        max_retries=2, backoff=0.0, backoff_max=0.0, sleep=lambda s: None
    )
    assert policy.run("query", flaky, salesforce._TimeoutSession(1.0)) == "ok"
    assert policy.retries == 1


@pytest.mark.django_db
def test_sync_survives_a_connection_dropped_mid_page(org):
    org.page_size = 1
    org.drop_next(1, after=2)
    run = sync_salesforce().run
    assert run.status == SyncStatus.SUCCEEDED
    assert Account.objects.count() == 3
    assert run.details["retries"] == 1
    assert len(org.dropped) == 1 and "/query/01g" in org.dropped[0]  # a query_more page
