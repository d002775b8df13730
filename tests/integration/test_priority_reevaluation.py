"""Re-evaluation over PostgreSQL: facts in bulk, only changes written, exceptions expire."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from portfolio.models import Account
from prioritization.facts import arr_ranks, build_facts, model_mapping
from prioritization.models import (
    PriorityDecision,
    PriorityException,
    PriorityReview,
    RuleSet,
)
from prioritization.services import priorities_reevaluate
from tests.factories import (
    AccountFactory,
    ApprovedExceptionFactory,
    OpportunityFactory,
    UserFactory,
    region,
)

pytestmark = pytest.mark.django_db
AS_OF = dt.date(2026, 11, 22)


def test_rule_sets_are_seeded_for_every_region_and_segment():
    rulesets = {(rs.region_id, rs.segment): rs for rs in RuleSet.objects.all()}
    assert len(rulesets) == 15
    assert rulesets[("US-EAST", "enterprise")].model == "us_enterprise"
    assert rulesets[("EMEA", "enterprise")].model == "emea_enterprise"
    assert rulesets[("EMEA", "enterprise")].p1_target_min == 5
    assert {rulesets[(r, "commercial")].model for r in ("US-WEST", "EMEA", "APAC", "LATAM")} == {
        "commercial"
    }
    assert rulesets[("US-WEST", "public_sector")].digital_tam_trial is True
    us = rulesets[("US-WEST", "enterprise")]
    assert (us.uptier_window_months, us.stage_adoption_hours, us.onboarding_window_days) == (
        6,
        Decimal("2.0"),
        45,
    )
    assert us.p1_target_share == Decimal("0.333")
    assert all(rs.version == 1 and rs.versions.count() == 1 for rs in rulesets.values())


def test_facts_are_built_with_a_fixed_number_of_queries(tam):
    def make(n):
        accounts = AccountFactory.create_batch(n, tam=tam, segment="commercial")
        for account in accounts:
            OpportunityFactory(account=account, type="Up-tier", close_date=AS_OF)
        return [a.pk for a in accounts]

    mapping = model_mapping(RuleSet.objects.all())
    few, many = make(2), make(20)
    with CaptureQueriesContext(connection) as small:
        build_facts(few, as_of=AS_OF, mapping=mapping)
    with CaptureQueriesContext(connection) as large:
        facts = build_facts(many, as_of=AS_OF, mapping=mapping)
    # accounts, ranks, up-tier dates, exceptions, triage issues, usage stages (issue 16)
    assert len(small) == len(large) <= 6
    assert all(f.uptier_opportunity_close_date == AS_OF for _, f in facts)


def test_arr_rank_is_within_the_model_population(tam):
    big_us = AccountFactory(tam=tam, arr=900_000, region=region("US-EAST"))
    com_a = AccountFactory(tam=tam, arr=500_000, segment="commercial", region=region("EMEA"))
    com_b = AccountFactory(tam=tam, arr=100_000, segment="commercial", region=region("US-WEST"))
    AccountFactory(tam=None, arr=999_000, segment="commercial")  # not TAM-assigned: unranked
    ranks = arr_ranks(model_mapping(RuleSet.objects.all()))
    assert ranks[big_us.pk] == 1
    assert (ranks[com_a.pk], ranks[com_b.pk]) == (1, 2)


def test_nearest_open_uptier_and_unmanaged_child_and_emea_facts(tam):
    parent = AccountFactory(tam=tam)
    child = AccountFactory(tam=None, parent=parent)
    account = AccountFactory(tam=tam, lam=500, licensed_seats=100, org_change=True)
    OpportunityFactory(account=account, type="Up-tier", close_date=dt.date(2027, 3, 1))
    OpportunityFactory(account=account, type="Up-tier", close_date=dt.date(2027, 1, 1))
    OpportunityFactory(
        account=account, type="Up-tier", close_date=dt.date(2026, 12, 1), is_closed=True
    )
    OpportunityFactory(account=account, type="Renewal", close_date=dt.date(2026, 12, 2))
    facts = {
        row.id: f
        for row, f in build_facts(
            [child.pk, account.pk], as_of=AS_OF, mapping=model_mapping(RuleSet.objects.all())
        )
    }
    assert facts[child.pk].unmanaged_child is True
    assert facts[account.pk].uptier_opportunity_close_date == dt.date(2027, 1, 1)
    assert facts[account.pk].emea.lam_seat_gap and facts[account.pk].emea.org_change


def test_reevaluation_writes_only_changes_and_mirrors_account_priority(tam):
    p1 = AccountFactory(tam=tam, churn_risk=True)
    p2 = AccountFactory(tam=tam)
    first = priorities_reevaluate(cause="manual", as_of=AS_OF)
    assert (first.evaluated, first.changed) == (2, 2)
    p1.refresh_from_db()
    p2.refresh_from_db()
    assert (p1.priority, p2.priority) == (1, 2)
    decision = PriorityDecision.objects.get(account=p1)
    assert decision.decided_by == "churn_risk"
    assert decision.ruleset_version.version == 1
    assert decision.trace[-2]["rule"] == "churn_risk"
    assert decision.cause == "manual" and decision.previous_priority is None

    second = priorities_reevaluate(cause="manual", as_of=AS_OF)
    assert second.changed == 0
    assert PriorityDecision.objects.count() == 2

    Account.objects.filter(pk=p1.pk).update(churn_risk=False)
    third = priorities_reevaluate(cause="quarterly_review", as_of=AS_OF)
    assert (third.changed, third.p1_to_p2) == (1, 1)
    latest = PriorityDecision.objects.filter(account=p1).order_by("-id").first()
    assert (latest.previous_priority, latest.priority, latest.cause) == (1, 2, "quarterly_review")


def test_dry_run_writes_nothing(tam):
    account = AccountFactory(tam=tam, churn_risk=True)
    result = priorities_reevaluate(cause="manual", as_of=AS_OF, dry_run=True)
    assert result.changed == 1 and result.review_id is None
    account.refresh_from_db()
    assert account.priority is None
    assert not PriorityDecision.objects.exists() and not PriorityReview.objects.exists()


def test_quarterly_review_ends_open_ended_exceptions_and_keeps_dated_ones(tam, manager, team):
    open_ended = AccountFactory(tam=tam)
    dated = AccountFactory(tam=tam)
    for account, expires in ((open_ended, None), (dated, dt.date(2027, 6, 1))):
        ApprovedExceptionFactory(
            account=account, requested_by=tam, decided_by=manager, expires_on=expires
        )
    manual = priorities_reevaluate(cause="manual", as_of=AS_OF)
    assert manual.exceptions_expired == 0
    assert set(Account.objects.values_list("priority", flat=True)) == {1}
    result = priorities_reevaluate(cause="quarterly_review", as_of=AS_OF)
    assert result.exceptions_expired == 1
    open_ended.refresh_from_db()
    dated.refresh_from_db()
    assert (open_ended.priority, dated.priority) == (2, 1)
    assert PriorityException.objects.get(account=open_ended).status == "expired"


def test_command_prints_one_summary_line_and_dry_run_keeps_the_data(tam, capsys):
    AccountFactory(tam=tam, churn_risk=True)
    call_command("reevaluate_priorities", "--dry-run", "--as-of", "2026-11-22")
    out = capsys.readouterr().out.strip().splitlines()
    assert out == [
        "[dry run] Re-evaluated 1 accounts as of 2026-11-22: 1 changed (P1->P2 0, P2->P1 0), "
        "0 unchanged, 0 without a rule set, 0 exceptions expired in " + out[0].rsplit(" in ", 1)[1]
    ]
    assert not PriorityDecision.objects.exists()
    call_command("reevaluate_priorities")
    assert PriorityDecision.objects.count() == 1
    review = PriorityReview.objects.get()
    assert (review.cause, review.evaluated, review.changed) == ("manual", 1, 1)


def test_reevaluation_queries_do_not_grow_with_accounts(tam, django_assert_max_num_queries):
    AccountFactory.create_batch(30, tam=tam)
    other = UserFactory(role="TAM")
    AccountFactory.create_batch(30, tam=other, segment="commercial")
    # Fixed: review, expiry, rule sets, versions, ids, ranks; per batch: latest decisions,
    # accounts, up-tiers, exceptions, COPY, update; then the review update.
    with django_assert_max_num_queries(20):
        result = priorities_reevaluate(cause="manual", as_of=AS_OF, batch_size=1000)
    assert result.evaluated == 60


def test_open_triage_issue_makes_a_commercial_account_at_risk(tam):
    from django.utils import timezone

    from triage.models import TriageIssue

    RuleSet.objects.filter(segment="commercial").update(commercial_top_n=0)  # no ARR rule
    base = {"tam": tam, "segment": "commercial", "arr": 40_000, "success_plan": "objectives"}
    account = AccountFactory(**base)
    closed = AccountFactory(**base)
    for acc, status in ((account, "open"), (closed, "closed")):
        TriageIssue.objects.create(
            account=acc, title="ER", status=status, colour="yellow", opened_at=timezone.now()
        )
    priorities_reevaluate(cause="manual", as_of=AS_OF)
    account.refresh_from_db()
    closed.refresh_from_db()
    assert (account.priority, closed.priority) == (1, 2)
    step = next(
        s
        for s in PriorityDecision.objects.get(account=account).trace
        if s["rule"] == "commercial_at_risk"
    )
    assert step["evidence"] == "open triage issue"


def test_changed_priorities_are_written_back_to_salesforce_on_commit(
    tam, settings, django_capture_on_commit_callbacks
):
    settings.SALESFORCE_ENABLED = True
    AccountFactory(tam=tam, churn_risk=True)
    with django_capture_on_commit_callbacks() as callbacks:
        priorities_reevaluate(cause="manual", as_of=AS_OF)
    assert len(callbacks) == 1
    with django_capture_on_commit_callbacks() as callbacks:
        priorities_reevaluate(cause="manual", as_of=AS_OF)  # nothing changed
    assert callbacks == []


def test_account_history_records_the_review_and_who(tam, manager):
    account = AccountFactory(tam=tam, churn_risk=True)
    result = priorities_reevaluate(cause="manual", actor=manager, as_of=AS_OF)
    event = account.history.order_by("-pgh_id").first()
    assert event.priority == 1
    assert event.pgh_context.metadata["priority_review"] == result.review_id
    assert event.pgh_context.metadata["user"] == manager.pk
