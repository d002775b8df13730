"""The re-evaluation at scale (issue 12, point 2): committed per batch under a review
marker, so a review that dies mid-way is carried on and never applies a batch twice; each
account's current decision is read from its `priority_decision` pointer, which every path
that stores a decision keeps right; untouched accounts are not written at all."""

from __future__ import annotations

import datetime as dt
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from django.db import connection, transaction

from portfolio.models import Account, AccountEvent
from prioritization.models import (
    ExceptionStatus,
    PriorityDecision,
    PriorityException,
    PriorityReview,
)
from prioritization.services import (
    priorities_reevaluate,
    priority_exception_approve,
    priority_exception_request,
)
from prioritization.tasks import reevaluate_accounts
from tests.conftest import worker_environment
from tests.factories import AccountFactory, ApprovedExceptionFactory, OpportunityFactory

AS_OF = dt.date(2026, 11, 22)
ROOT = Path(__file__).resolve().parents[2]


def pointers_are_current() -> list[tuple[int, int | None, int | None]]:
    """Accounts whose pointer is not their latest decision (by history): empty when right."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT a.id, a.priority_decision_id, latest.id
            FROM portfolio_account a
            LEFT JOIN (
                SELECT DISTINCT ON (account_id) account_id, id, priority
                FROM prioritization_prioritydecision
                ORDER BY account_id, decided_at DESC, id DESC
            ) latest ON latest.account_id = a.id
            WHERE a.priority_decision_id IS DISTINCT FROM latest.id
            """
        )
        return cursor.fetchall()


def row_versions(table: str) -> dict[int, str]:
    """Each row's xmin: it changes whenever the row is written, even to equal values."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id, xmin::text FROM {table}")  # noqa: S608  # nosec B608 # fixed table names from the test
        return dict(cursor.fetchall())


def other_connection() -> psycopg.Connection:
    s = connection.settings_dict
    return psycopg.connect(
        dbname=s["NAME"],
        host=s["HOST"] or None,
        port=s["PORT"] or None,
        user=s["USER"] or None,
        password=s["PASSWORD"] or None,
        autocommit=True,
    )


# --- skip untouched -----------------------------------------------------------------------


@pytest.mark.django_db
def test_an_unchanged_review_writes_no_row(tam):
    AccountFactory.create_batch(12, tam=tam)
    AccountFactory.create_batch(8, tam=tam, churn_risk=True)
    priorities_reevaluate(cause="quarterly_review", as_of=AS_OF, batch_size=7)
    accounts, decisions = (
        row_versions("portfolio_account"),
        row_versions("prioritization_prioritydecision"),
    )
    events = AccountEvent.objects.count()

    again = priorities_reevaluate(cause="quarterly_review", as_of=AS_OF, batch_size=7)

    assert (again.evaluated, again.changed, again.batches) == (20, 0, 3)
    assert row_versions("portfolio_account") == accounts  # not one account row written
    assert row_versions("prioritization_prioritydecision") == decisions
    assert AccountEvent.objects.count() == events


@pytest.mark.django_db
def test_only_the_changed_accounts_are_written(tam):
    accounts = AccountFactory.create_batch(10, tam=tam)
    priorities_reevaluate(cause="quarterly_review", as_of=AS_OF, batch_size=4)
    before = row_versions("portfolio_account")
    Account.objects.filter(pk=accounts[3].pk).update(churn_risk=True)
    touched = row_versions("portfolio_account")[accounts[3].pk]

    result = priorities_reevaluate(cause="quarterly_review", as_of=AS_OF, batch_size=4)

    assert (result.changed, result.changed_account_ids) == (1, [accounts[3].pk])
    after = row_versions("portfolio_account")
    assert {pk for pk in after if after[pk] != before[pk]} == {accounts[3].pk}
    assert after[accounts[3].pk] != touched
    assert PriorityDecision.objects.count() == 11
    assert pointers_are_current() == []


# --- the current-decision pointer -----------------------------------------------------------


@pytest.mark.django_db
def test_every_path_that_stores_a_decision_keeps_the_pointer(tam, manager, team):
    plain, at_risk, upgraded = AccountFactory.create_batch(3, tam=tam)
    Account.objects.filter(pk=at_risk.pk).update(churn_risk=True)
    # A whole review.
    priorities_reevaluate(cause="quarterly_review", as_of=AS_OF, batch_size=2)
    assert pointers_are_current() == []
    assert Account.objects.filter(priority_decision__isnull=True).count() == 0

    # The deciding rule changes, the priority does not (P1 by churn risk -> P1 by an
    # up-tier): a new decision, and only the pointer moves.
    OpportunityFactory(account=at_risk, type="Up-tier", close_date=AS_OF + dt.timedelta(days=30))
    Account.objects.filter(pk=at_risk.pk).update(churn_risk=False)
    result = priorities_reevaluate(cause="manual", as_of=AS_OF, account_ids=[at_risk.pk])
    at_risk.refresh_from_db()
    assert result.changed == 0 and at_risk.priority == 1
    assert at_risk.priority_decision.decided_by == "uptier_opportunity"
    assert pointers_are_current() == []

    # An approved exception (re-evaluates the account at once).
    exception = priority_exception_request(
        account=plain, requested_by=tam, requested_priority=1, reason="Strategic logo"
    )
    priority_exception_approve(exception=exception, manager=manager)
    plain.refresh_from_db()
    assert (plain.priority, plain.priority_decision.decided_by) == (1, "p1_exception")
    assert plain.priority_decision.exception_id == exception.pk
    assert pointers_are_current() == []

    # The quarterly review ends it ("until the next quarterly review").
    priorities_reevaluate(cause="quarterly_review", as_of=AS_OF)
    plain.refresh_from_db()
    assert PriorityException.objects.get(pk=exception.pk).status == ExceptionStatus.EXPIRED
    assert (plain.priority, plain.priority_decision.decided_by) == (2, "default_p2")

    # The sync's task for the accounts it changed.
    Account.objects.filter(pk=upgraded.pk).update(churn_risk=True)
    reevaluate_accounts([upgraded.pk, plain.pk])
    upgraded.refresh_from_db()
    assert upgraded.priority_decision.decided_by == "churn_risk"
    assert pointers_are_current() == []
    assert PriorityDecision.objects.filter(account=upgraded).count() == 2


@pytest.mark.django_db
def test_a_dangling_pointer_is_mended_by_the_next_review(tam):
    account = AccountFactory(tam=tam)
    priorities_reevaluate(cause="manual", as_of=AS_OF)
    Account.objects.filter(pk=account.pk).update(priority_decision_id=10**12)
    priorities_reevaluate(cause="manual", as_of=AS_OF)
    assert pointers_are_current() == []


@pytest.mark.django_db
def test_a_dry_run_expires_nothing_and_stores_nothing(tam, manager):
    account = AccountFactory(tam=tam)
    ApprovedExceptionFactory(account=account, requested_by=tam, decided_by=manager)
    result = priorities_reevaluate(
        cause="quarterly_review", as_of=AS_OF, dry_run=True, batch_size=1
    )
    assert (result.exceptions_expired, result.changed) == (1, 1)
    assert PriorityException.objects.get().status == ExceptionStatus.APPROVED
    assert not PriorityDecision.objects.exists() and not PriorityReview.objects.exists()
    assert Account.objects.get().priority_decision_id is None


# --- resumable, committed per batch ---------------------------------------------------------


class Interrupted(Exception):
    pass


def _decisions() -> list[tuple]:
    return sorted(
        PriorityDecision.objects.values_list(
            "account_id", "priority", "previous_priority", "decided_by", "trace", "exception_id"
        )
    )


@pytest.mark.django_db(transaction=True)
def test_a_review_read_ahead_decides_what_one_transaction_decides(
    tam, manager, django_db_serialized_rollback
):
    """Outside a transaction each next batch is read and evaluated while the batch before
    is written (a session of its own): the decisions, traces, priorities and ended
    exceptions are those of the same review run in one transaction, also for an
    exception "until the next quarterly review" in a batch read ahead."""
    accounts = AccountFactory.create_batch(25, tam=tam)
    for account in accounts[::4]:
        account.churn_risk = True
        account.save(update_fields=["churn_risk"])
    open_ended, dated = accounts[22], accounts[13]  # batch 3 and batch 2 of 10
    for account, expires in ((open_ended, None), (dated, dt.date(2027, 6, 1))):
        ApprovedExceptionFactory(
            account=account, requested_by=tam, decided_by=manager, expires_on=expires
        )

    with transaction.atomic():  # one transaction: no read ahead; rolled back
        alone = priorities_reevaluate(cause="quarterly_review", as_of=AS_OF, batch_size=10)
        in_one = (_decisions(), sorted(Account.objects.values_list("id", "priority")))
        transaction.set_rollback(True)
    assert not PriorityDecision.objects.exists()

    ahead = priorities_reevaluate(cause="quarterly_review", as_of=AS_OF, batch_size=10)

    assert (_decisions(), sorted(Account.objects.values_list("id", "priority"))) == in_one
    assert (ahead.batches, ahead.changed, ahead.exceptions_expired) == (3, 25, 1)
    assert (alone.changed, alone.exceptions_expired) == (25, 1)
    statuses = dict(PriorityException.objects.values_list("account_id", "status"))
    assert statuses == {open_ended.pk: "expired", dated.pk: "approved"}
    assert Account.objects.get(pk=dated.pk).priority == 1
    assert pointers_are_current() == []


@pytest.mark.django_db(transaction=True)
def test_an_interrupted_review_resumes_after_its_marker(tam, django_db_serialized_rollback):
    accounts = AccountFactory.create_batch(25, tam=tam)
    ids = sorted(a.pk for a in accounts)
    seen: list[int] = []

    def stop_after_two_batches(n: int) -> None:
        seen.append(n)
        if len(seen) == 1:
            # Batch 1 is committed and holds no lock: another session sees its decisions
            # and can lock its accounts at once.
            with other_connection() as other:
                assert other.execute(
                    "SELECT count(*) FROM prioritization_prioritydecision"
                ).fetchone() == (10,)
                other.execute(
                    "SELECT id FROM portfolio_account WHERE id <= %s FOR UPDATE NOWAIT",
                    [ids[9]],
                )
        if len(seen) == 2:
            raise Interrupted

    with pytest.raises(Interrupted):
        priorities_reevaluate(
            cause="quarterly_review", as_of=AS_OF, batch_size=10, progress=stop_after_two_batches
        )
    review = PriorityReview.objects.get()
    assert (review.done_through, review.finished_at, review.evaluated) == (ids[19], None, 20)
    assert PriorityDecision.objects.count() == 20

    resumed = priorities_reevaluate(cause="quarterly_review", as_of=AS_OF, batch_size=10)

    assert resumed.resumed and resumed.review_id == review.pk and resumed.batches == 1
    assert resumed.changed_account_ids == ids[20:]
    assert (resumed.evaluated, resumed.changed) == (25, 25)  # the whole review's counts
    review.refresh_from_db()
    assert review.finished_at is not None and review.done_through == ids[-1]
    # Every account decided exactly once, all under the one review.
    assert PriorityDecision.objects.count() == 25
    assert set(PriorityDecision.objects.values_list("review_id", flat=True)) == {review.pk}
    assert pointers_are_current() == []
    # A finished review is not resumed: the next one is new and finds nothing to change.
    nxt = priorities_reevaluate(cause="quarterly_review", as_of=AS_OF, batch_size=10)
    assert not nxt.resumed and nxt.changed == 0 and PriorityDecision.objects.count() == 25


@pytest.mark.django_db(transaction=True)
def test_a_killed_review_resumes_and_never_decides_twice(tam, django_db_serialized_rollback):
    """The command in a process of its own, SIGKILLed mid-way (no cleanup), then run
    again: no account has two decisions, and the review ends with every account."""
    AccountFactory.create_batch(400, tam=tam)
    AccountFactory.create_batch(200, tam=tam, churn_risk=True)
    command = [
        sys.executable,
        "manage.py",
        "reevaluate_priorities",
        "--cause",
        "quarterly_review",
        "--as-of",
        AS_OF.isoformat(),
        "--batch-size",
        "5",
    ]
    process = subprocess.Popen(  # nosec B603 # our own command, fixed arguments
        command, cwd=ROOT, env=worker_environment(), stdout=subprocess.PIPE
    )
    deadline = time.monotonic() + 120
    while PriorityDecision.objects.count() < 50:
        assert process.poll() is None, "the review ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    review = PriorityReview.objects.get()
    assert review.finished_at is None
    applied = PriorityDecision.objects.count()
    assert 50 <= applied < 600
    # What was applied is exactly the batches up to the marker: nothing half-done.
    assert applied == Account.objects.filter(pk__lte=review.done_through).count()

    result = priorities_reevaluate(cause="quarterly_review", as_of=AS_OF, batch_size=50)

    assert result.resumed and result.review_id == review.pk
    assert (result.evaluated, result.changed) == (600, 600)
    assert PriorityDecision.objects.count() == 600
    assert PriorityDecision.objects.values("account").distinct().count() == 600
    assert pointers_are_current() == []
    assert Account.objects.filter(priority=1).count() == 200
