"""Bulk actions on a selection of the accounts table, for managers and admins (issue 15.5):
reassign the TAM (written back to Salesforce), a rule-set parameter's what-if for the
selection, and a CSV export of it.

A selection is either the ticked rows (`account` ids) or "every account matching the
filter" (`all_matching` with the table's query string in `filter`); both are bounded by
`BULK_MAX` and checked account by account against what the user may see.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from decimal import InvalidOperation

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models
from django.http import QueryDict

from portfolio.models import Account
from portfolio.roles import role_of
from portfolio.selectors import accounts_for_user, tams_for_user
from prioritization.models import RuleSet
from prioritization.selectors import ruleset_whatif
from ui import selectors
from ui.forms import AccountFilterForm

# A selection larger than this is refused ("narrow the filter"): one request, one
# transaction, one write-back sweep of a size the brake can still reason about.
BULK_MAX = 500
# A change to more accounts than this (or to "all matching") is confirmed first.
CONFIRM_OVER = 10
ACTIONS = {
    "reassign_tam": "Reassign TAM",
    "whatif": "What-if",
    "export": "Export selection",
}
# The rule-set parameters a what-if may try (the pure rules' numeric `Params`).
WHATIF_PARAMETERS = [
    "stage_adoption_hours",
    "infrastructure_change_hours",
    "uptier_window_months",
    "onboarding_window_days",
    "onboarding_max_days",
    "commercial_new_customer_days",
    "commercial_top_n",
    "commercial_p2_arr_below",
    "commercial_min_stages",
    "commercial_uptier_window_months",
]


def may_bulk(user: User) -> bool:
    return role_of(user) in ("manager", "admin")


def _ruleset_field(name: str) -> models.Field:
    """A what-if parameter's column (`get_field` may also answer a reverse relation)."""
    field = RuleSet._meta.get_field(name)
    if not isinstance(field, models.Field):
        raise TypeError(f"RuleSet.{name} is not a column")
    return field


def whatif_parameter_choices() -> list[tuple[str, str]]:

    return [
        (name, str(_ruleset_field(name).verbose_name).capitalize()) for name in WHATIF_PARAMETERS
    ]


@dataclass
class Selection:
    ids: list[int]
    all_matching: bool
    querystring: str
    errors: dict[str, list[str]] = field(default_factory=dict)


def selection_from_post(user: User, post: QueryDict, *, tam_id: int | None = None) -> Selection:
    """The accounts a bulk request names, each one checked against `accounts_for_user`.

    Ticked ids the user may not see raise PermissionDenied (nothing is done to the others:
    a selection is acted on whole or not at all); "all matching" re-applies the filter
    within the user's scope, so it can only find accounts they may see."""
    if not may_bulk(user):
        raise PermissionDenied("Bulk actions on accounts are for managers and admins.")
    querystring = post.get("filter", "")[:2000]
    scoped = accounts_for_user(user)
    if tam_id is not None:
        scoped = scoped.filter(tam_id=tam_id)
    if post.get("all_matching"):
        form = AccountFilterForm(QueryDict(querystring))
        rows = form.apply(selectors.accounts_with_table_columns(scoped))
        ids = list(rows.values_list("pk", flat=True)[: BULK_MAX + 1])
        selection = Selection(ids, True, querystring)
        if len(ids) > BULK_MAX:
            selection.errors["all_matching"] = [
                f"More than {BULK_MAX} accounts match this filter: narrow it, or tick the "
                "accounts one by one."
            ]
        elif not ids:
            selection.errors["account"] = ["No account matches this filter."]
        return selection
    raw = post.getlist("account")
    if len(raw) > BULK_MAX:
        return Selection([], False, querystring, {"account": [f"At most {BULK_MAX} at once."]})
    try:
        wanted = sorted({int(value) for value in raw})
    except ValueError:
        return Selection([], False, querystring, {"account": ["Not an account id."]})
    if not wanted:
        return Selection([], False, querystring, {"account": ["Tick at least one account."]})
    visible = set(scoped.filter(pk__in=wanted).values_list("pk", flat=True))
    refused = len(wanted) - len(visible)
    if refused:
        raise PermissionDenied(
            f"{refused} of the {len(wanted)} selected accounts are not in a book you manage, "
            "so nothing was changed."
        )
    return Selection(wanted, False, querystring)


def new_tam(user: User, raw: str) -> tuple[User | None, str]:
    """The TAM to reassign to, one the user may assign (their teams' TAMs; any for an
    admin), or None with the reason."""
    if not raw:
        return None, "Choose the TAM to reassign the accounts to."
    if not raw.isdigit():
        return None, "Not a user id."
    tam = tams_for_user(user).filter(pk=int(raw)).first()
    if tam is None:
        return None, "Not a TAM of a team you manage."
    return tam, ""


def whatif_value(parameter: str, raw: str):
    """The value to try for `parameter`, validated as the rule-set admin would (a
    ValidationError naming the field otherwise)."""

    if parameter not in WHATIF_PARAMETERS:
        raise ValidationError({"parameter": ["Choose a rule-set parameter."]})
    formfield = _ruleset_field(parameter).formfield()
    if formfield is None:
        raise TypeError(f"RuleSet.{parameter} has no form field")
    try:
        value = formfield.clean(raw.strip())
    except ValidationError as exc:
        raise ValidationError({"value": exc.messages}) from exc
    except (InvalidOperation, ValueError) as exc:
        raise ValidationError({"value": ["Enter a number."]}) from exc
    if value is None:
        raise ValidationError({"value": ["Enter the value to try."]})
    return value


def selection_whatif(*, ids: list[int], parameter: str, raw: str) -> dict:
    """How the selected accounts would move if their rule sets' `parameter` were `raw`
    (nothing stored). One what-if per rule set the selection touches, each limited to the
    selection (`prioritization.ruleset_whatif`)."""

    groups = set(Account.objects.filter(pk__in=ids).values_list("region_id", "segment").distinct())
    rulesets = [
        rs
        for rs in RuleSet.objects.select_related("region").order_by("region_id", "segment")
        if (rs.region_id, rs.segment) in groups
    ]
    results = []
    value = whatif_value(parameter, raw)
    for ruleset in rulesets:
        edited = copy.copy(ruleset)
        setattr(edited, parameter, value)
        results.append(
            {
                "ruleset": ruleset,
                "before": getattr(ruleset, parameter),
                "after": getattr(edited, parameter),
                "whatif": ruleset_whatif(edited=edited, account_ids=ids),
            }
        )
    covered = sum(r["whatif"].evaluated for r in results)
    return {"results": results, "covered": covered, "uncovered": len(ids) - covered}
