"""integrations.salesforce batched writes (sObject Collections, Bulk API 2.0) against the
fake over real HTTPS, with the real simple-salesforce client."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from integrations import salesforce


@pytest.fixture
def accounts(fake_salesforce):
    return [
        fake_salesforce.add("Account", Name=f"A{i}", Health_Score__c="Green", CSM_Priority__c=3)[
            "Id"
        ]
        for i in range(6)
    ]


def collection_posts(fake) -> int:
    return sum(1 for method, path in fake.requests if method == "PATCH" and "composite" in path)


def test_collection_update_reports_each_record_in_order_and_applies_the_rest(
    fake_salesforce, accounts
):
    deleted, refused, locked, *fine = accounts
    fake_salesforce.delete("Account", deleted)
    fake_salesforce.refuse_records({refused: ("FIELD_CUSTOM_VALIDATION_EXCEPTION", "No reason")})
    fake_salesforce.lock_rows_next([locked])
    before = {i: fake_salesforce.get("Account", i)["SystemModstamp"] for i in fine}
    # Results come back in request order, so send them shuffled.
    order = [fine[0], deleted, fine[1], refused, locked, fine[2]]
    records = [{"Id": i, "Health_Score__c": "Red", "CSM_Priority__c": Decimal("1")} for i in order]

    results = salesforce.client().update_collection("Account", records)

    assert [r.salesforce_id for r in results] == order
    assert [r.success for r in results] == [True, False, True, False, False, True]
    by_id = {r.salesforce_id: r for r in results}
    assert by_id[deleted].error_code == "ENTITY_IS_DELETED" and not by_id[deleted].retryable
    assert by_id[refused].error_code == "FIELD_CUSTOM_VALIDATION_EXCEPTION"
    assert by_id[refused].message == "No reason" and not by_id[refused].retryable
    assert by_id[locked].error_code == "UNABLE_TO_LOCK_ROW" and by_id[locked].retryable
    for record_id in fine:
        record = fake_salesforce.get("Account", record_id)
        assert record["Health_Score__c"] == "Red" and record["CSM_Priority__c"] == 1
        assert record["SystemModstamp"] > before[record_id]
    assert fake_salesforce.get("Account", refused)["Health_Score__c"] == "Green"
    assert fake_salesforce.get("Account", locked)["Health_Score__c"] == "Green"
    assert [(obj, i) for obj, i, _ in fake_salesforce.patches] == [
        ("Account", i) for i in (fine[0], fine[1], fine[2])
    ]
    assert fake_salesforce.patches[0][2] == {"Health_Score__c": "Red", "CSM_Priority__c": 1}
    assert fake_salesforce.write_requests == [("collection", 6)]

    # The locked row was a one-off: sending it again succeeds.
    (again,) = salesforce.client().update_collection(
        "Account", [{"Id": locked, "Health_Score__c": "Red"}]
    )
    assert again.success and fake_salesforce.get("Account", locked)["Health_Score__c"] == "Red"


def test_collection_update_clears_a_field_with_none(fake_salesforce, accounts):
    (result,) = salesforce.client().update_collection(
        "Account", [{"Id": accounts[0], "Health_Score__c": None}]
    )
    assert result.success
    assert fake_salesforce.get("Account", accounts[0])["Health_Score__c"] is None


def test_malformed_and_unknown_ids_fail_per_record(fake_salesforce, accounts):
    unknown = "001999999999999AAA"
    results = salesforce.client().update_collection(
        "Account",
        [
            {"Id": "not-an-id", "Health_Score__c": "Red"},
            {"Id": unknown, "Health_Score__c": "Red"},
            {"Id": accounts[0], "Health_Score__c": "Red"},
        ],
    )
    assert [(r.salesforce_id, r.success, r.error_code) for r in results] == [
        ("not-an-id", False, "MALFORMED_ID"),
        (unknown, False, "INVALID_CROSS_REFERENCE_KEY"),
        (accounts[0], True, ""),
    ]


def test_more_than_the_collection_limit_is_refused_before_sending(fake_salesforce, accounts):
    client = salesforce.client()
    records = [{"Id": accounts[0], "Health_Score__c": "Red"}] * (salesforce.COLLECTION_LIMIT + 1)
    with pytest.raises(ValueError, match="200"):
        client.update_collection("Account", records)
    assert collection_posts(fake_salesforce) == 0 and fake_salesforce.write_requests == []


def test_a_record_without_an_id_is_refused_before_sending(fake_salesforce, accounts):
    with pytest.raises(ValueError, match="no Id"):
        salesforce.client().update_collection("Account", [{"Health_Score__c": "Red"}])
    assert collection_posts(fake_salesforce) == 0


def test_an_unknown_field_fails_the_whole_request(fake_salesforce, accounts):
    client = salesforce.client()
    with pytest.raises(salesforce.SalesforceMalformedRequest) as info:
        client.update_collection(
            "Account",
            [{"Id": accounts[0], "Health_Score__c": "Red"}, {"Id": accounts[1], "Nope__c": 1}],
        )
    assert info.value.content[0]["errorCode"] == "INVALID_FIELD"
    assert client.retries == 0 and fake_salesforce.patches == []


def test_the_fake_refuses_more_than_200_records(fake_salesforce, accounts):
    """Our stand-in answers like Salesforce when a client skips the limit check."""
    client = salesforce.client()
    body = {
        "allOrNone": False,
        "records": [
            {"attributes": {"type": "Account"}, "id": accounts[0], "Health_Score__c": "Red"}
        ]
        * 201,
    }
    with pytest.raises(salesforce.SalesforceMalformedRequest) as info:
        client.sf.restful("composite/sobjects", method="PATCH", json=body)
    assert info.value.content[0]["errorCode"] == "EXCEEDED_ID_LIMIT"


def test_a_503_on_a_collection_update_is_retried(fake_salesforce, accounts):
    fake_salesforce.fail_next(503, 1)
    client = salesforce.client()
    results = client.update_collection("Account", [{"Id": accounts[0], "Health_Score__c": "Red"}])
    assert [r.success for r in results] == [True]
    assert client.retries == 1 and collection_posts(fake_salesforce) == 2
    assert fake_salesforce.write_calls("collection") == 1  # the 503 never reached the endpoint


def test_a_collection_update_logs_in_again_when_the_session_expires(
    fake_salesforce, accounts, settings
):
    fake_salesforce.use_password_auth(settings)
    client = salesforce.client()
    fake_salesforce.expire_sessions()
    results = client.update_collection("Account", [{"Id": accounts[0], "Health_Score__c": "Red"}])
    assert [r.success for r in results] == [True]
    assert client.relogins == 1 and fake_salesforce.logins == 2
    assert fake_salesforce.get("Account", accounts[0])["Health_Score__c"] == "Red"


def test_an_empty_collection_sends_nothing(fake_salesforce):
    assert salesforce.client().update_collection("Account", []) == []
    assert collection_posts(fake_salesforce) == 0


# --- Bulk API 2.0 ----------------------------------------------------------------------


def wait_for(client, job_id, seconds=5.0):
    deadline = time.monotonic() + seconds
    while (results := client.bulk_update_results(job_id)) is None:
        assert time.monotonic() < deadline, "the job never finished"
        time.sleep(0.05)
    return results


def test_bulk_update_reports_failures_and_clears_none_after_the_job_runs(fake_salesforce, accounts):
    deleted, refused, locked, *fine = accounts
    fake_salesforce.delete("Account", deleted)
    fake_salesforce.refuse_records({refused: ("FIELD_CUSTOM_VALIDATION_EXCEPTION", "No: why")})
    fake_salesforce.lock_rows_next([locked])
    fake_salesforce.bulk_delay = 0.4
    records = [
        {"Id": fine[0], "Health_Score__c": None, "CSM_Priority__c": 1},
        # No CSM_Priority__c: an empty cell, which Bulk API leaves unchanged.
        {"Id": fine[1], "Health_Score__c": 'Red, "very"'},
        {"Id": fine[2], "Health_Score__c": "Amber", "CSM_Priority__c": Decimal("2")},
        {"Id": deleted, "Health_Score__c": "Red"},
        {"Id": refused, "Health_Score__c": "Red"},
        {"Id": locked, "Health_Score__c": "Red"},
    ]
    client = salesforce.client()

    job_id = client.bulk_update_submit("Account", records)

    assert client.bulk_update_results(job_id) is None  # still InProgress
    assert fake_salesforce.get("Account", fine[1])["Health_Score__c"] == "Green"
    results = wait_for(client, job_id)
    by_id = {r.salesforce_id: r for r in results}
    assert sorted(by_id) == sorted(accounts) and len(results) == 6
    assert all(by_id[i].success for i in fine)
    assert (by_id[deleted].error_code, by_id[deleted].message) == (
        "ENTITY_IS_DELETED",
        "entity is deleted",
    )
    assert (by_id[refused].error_code, by_id[refused].message) == (
        "FIELD_CUSTOM_VALIDATION_EXCEPTION",
        "No: why",
    )
    assert not by_id[refused].retryable and not by_id[deleted].retryable
    assert by_id[locked].error_code == "UNABLE_TO_LOCK_ROW" and by_id[locked].retryable
    first, second, third = (fake_salesforce.get("Account", i) for i in fine)
    assert first["Health_Score__c"] is None and first["CSM_Priority__c"] == 1
    assert second["Health_Score__c"] == 'Red, "very"' and second["CSM_Priority__c"] == 3
    assert third["Health_Score__c"] == "Amber" and third["CSM_Priority__c"] == 2
    assert fake_salesforce.get("Account", refused)["Health_Score__c"] == "Green"
    assert sorted(i for _, i, _ in fake_salesforce.patches) == sorted(fine)
    assert fake_salesforce.write_requests == [("bulk2", 6)]
    # The null went over the wire as Bulk API's #N/A, not as an empty cell.
    assert fake_salesforce.jobs[job_id]["csv"].splitlines()[1] == f"{fine[0]},1,#N/A"


def test_bulk_update_retries_a_503_and_a_relogin(fake_salesforce, accounts, settings):
    fake_salesforce.use_password_auth(settings)
    client = salesforce.client()
    fake_salesforce.fail_next(503, 1)
    job_id = client.bulk_update_submit("Account", [{"Id": accounts[0], "Health_Score__c": "Red"}])
    fake_salesforce.expire_sessions()
    (result,) = wait_for(client, job_id)
    assert result.success and client.retries == 1 and client.relogins == 1
    assert fake_salesforce.get("Account", accounts[0])["Health_Score__c"] == "Red"


def test_a_failed_bulk_job_raises_with_its_error_message(fake_salesforce, accounts):
    client = salesforce.client()
    job_id = client.bulk_update_submit("Account", [{"Id": accounts[0], "Nope__c": "x"}])
    with pytest.raises(salesforce.BulkJobFailed, match="Field name not found : Nope__c") as info:
        client.bulk_update_results(job_id)
    assert info.value.state == "Failed" and isinstance(info.value, salesforce.SalesforceError)
    assert fake_salesforce.patches == []


def test_bulk_update_refuses_records_without_ids_before_sending(fake_salesforce):
    with pytest.raises(ValueError, match="no Id"):
        salesforce.client().bulk_update_submit("Account", [{"Health_Score__c": "Red"}])
    assert fake_salesforce.jobs == {}
