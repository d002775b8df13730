"""The ARR rank's population follows the P4 rule (issue 14.1): a TAM-assigned
digital-only account is not P4 outside the Public Sector trial, so it is ranked."""

from __future__ import annotations

from decimal import Decimal

import pytest

from portfolio.models import Region
from prioritization.facts import arr_ranks, model_mapping
from prioritization.models import RuleSet
from tests import factories

pytestmark = pytest.mark.django_db


def test_a_tam_assigned_digital_account_is_ranked_unless_its_rule_set_runs_the_trial(tam):
    region = Region.objects.get(code="EMEA")
    big = factories.AccountFactory(
        tam=tam, region=region, segment="commercial", arr=Decimal(900_000), digital_only=True
    )
    small = factories.AccountFactory(tam=tam, region=region, segment="commercial", arr=Decimal(10))
    ruleset = RuleSet.objects.get(region=region, segment="commercial")
    mapping = model_mapping(RuleSet.objects.all())
    ruleset.digital_tam_trial = False
    ruleset.save(update_fields=["digital_tam_trial"])
    ranks = arr_ranks(mapping, [big.pk, small.pk])
    assert (ranks[big.pk], ranks[small.pk]) == (1, 2)
    ruleset.digital_tam_trial = True
    ruleset.save(update_fields=["digital_tam_trial"])
    ranks = arr_ranks(mapping, [big.pk, small.pk])
    assert big.pk not in ranks and ranks[small.pk] == 1
