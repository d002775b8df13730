"""JSON API of the prioritization app (DESIGN.md "JSON API"): evaluate facts without
storing anything, and read an account's stored decision with its trace."""

from __future__ import annotations

from django.contrib.auth.decorators import login_not_required
from django.shortcuts import get_object_or_404
from rest_framework import serializers
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from portfolio.models import Region, Segment
from portfolio.selectors import accounts_for_user
from prioritization.rules import (
    HEALTH_COLOURS,
    LABELS,
    MODELS,
    SUCCESS_PLANS,
    AccountFacts,
    EmeaFacts,
    ExceptionFacts,
    Params,
    evaluate,
)
from prioritization.selectors import decision_for_account, ruleset_for
from triage.api import (
    StrictBoolean,
    StrictChoice,
    StrictIntChoice,
    StrictNumber,
    StrictSerializer,
    StrictString,
)


# Strict JSON, as the health API: booleans are JSON booleans, numbers JSON numbers, a null
# is the same as leaving the field out (DESIGN.md: "defaults to false / null / 0 / "none""),
# and an unknown field is a per-field error naming the valid ones (triage/api.py).
def _bool() -> StrictBoolean:
    return StrictBoolean(required=False, default=False)


def _date() -> serializers.DateField:
    return serializers.DateField(required=False, default=None)


class EmeaSerializer(StrictSerializer):
    org_change = _bool()
    onboarding = _bool()
    infrastructure_change = _bool()
    weekly_engagement_requested = _bool()
    lam_seat_gap = _bool()
    expansion_play = _bool()
    tam_handover = _bool()


class ExceptionSerializer(StrictSerializer):
    priority = StrictIntChoice(choices=[1, 2])
    approved = _bool()


class EvaluateSerializer(StrictSerializer):
    """The request of POST /api/v1/priority/evaluate; every field but `as_of` optional."""

    as_of = serializers.DateField()
    model = StrictChoice(choices=MODELS, required=False, default=None)
    region = StrictString(required=False, default=None)
    segment = StrictChoice(choices=Segment.values, required=False, default=None)
    arr = StrictNumber(min_value=0, required=False, default=0.0)
    arr_rank = StrictNumber(integer=True, min_value=1, required=False, default=None)
    tam_assigned = _bool()
    unmanaged_child = _bool()
    digital_only = _bool()
    onboarding_started = _date()
    onboarding_completed = _date()
    uptier_opportunity_close_date = _date()
    stage_adoption_hours_per_week = StrictNumber(
        min_value=0, max_value=168, required=False, default=0.0
    )
    infrastructure_change_hours_per_week = StrictNumber(
        min_value=0, max_value=168, required=False, default=0.0
    )
    churn_risk = _bool()
    health = StrictChoice(choices=HEALTH_COLOURS, required=False, default=None)
    in_triage = _bool()
    success_plan = StrictChoice(choices=SUCCESS_PLANS, required=False, default="none")
    critical_project = _bool()
    stages_adopted = StrictNumber(integer=True, min_value=0, required=False, default=0)
    key_logo = _bool()
    channel_engagement = _bool()
    nps = StrictNumber(integer=True, min_value=-100, max_value=100, required=False, default=None)
    emea = EmeaSerializer(required=False)
    exception = ExceptionSerializer(required=False, default=None)

    def validate_region(self, value: str | None) -> str | None:
        if value is not None and not Region.objects.filter(code=value).exists():
            codes = ", ".join(Region.objects.values_list("code", flat=True))
            raise serializers.ValidationError(f"Unknown region {value!r}; one of {codes}.")
        return value

    def validate(self, attrs: dict) -> dict:
        started, completed = attrs.get("onboarding_started"), attrs.get("onboarding_completed")
        if started and completed and completed < started:
            raise serializers.ValidationError(
                {"onboarding_completed": ["Onboarding cannot complete before it started."]}
            )
        ruleset = None
        if attrs.get("region") and attrs.get("segment"):
            ruleset = ruleset_for(region=attrs["region"], segment=attrs["segment"])
        if attrs.get("model") is None and ruleset is None:
            raise serializers.ValidationError(
                {"model": ["Give a model, or a region and segment that have a rule set."]}
            )
        attrs["_ruleset"] = ruleset
        return attrs


def _trace_json(trace: list[dict]) -> list[dict]:
    keys = ("rule", "question", "answer", "evidence")
    return [{k: step[k] for k in keys} for step in trace]


@login_not_required  # DRF authenticates (session or token) and answers 401/403 itself
@api_view(["POST"])
def evaluate_priority(request: Request) -> Response:
    serializer = EvaluateSerializer(data=request.data)
    if not serializer.is_valid():
        return Response(serializer.errors, status=400)
    data = dict(serializer.validated_data)
    ruleset = data.pop("_ruleset")
    model = data["model"] or ruleset.model
    if ruleset is not None and ruleset.model == model:
        params, version = ruleset.params(), ruleset.version
    else:
        params, version = Params(model=model), None
    data["model"] = model
    data["emea"] = EmeaFacts(**data.get("emea") or {})
    exc = data.get("exception")
    data["exception"] = ExceptionFacts(**exc) if exc else None
    decision = evaluate(AccountFacts(**data), params)
    return Response(
        {
            "priority": decision.priority,
            "label": decision.label,
            "model": decision.model,
            "ruleset_version": version,
            "decided_by": decision.decided_by,
            "trace": decision.trace_dicts(),
        }
    )


@login_not_required
@api_view(["GET"])
def account_priority(request: Request, salesforce_id: str) -> Response:
    """The stored decision behind the account's priority, with its trace; 404 when the
    user may not see the account (accounts_for_user)."""
    account = get_object_or_404(accounts_for_user(request.user), salesforce_id=salesforce_id)
    decision = decision_for_account(account)
    exception = None
    if decision is not None and decision.exception is not None:
        exc = decision.exception
        exception = {
            "priority": exc.requested_priority,
            "status": exc.status,
            "reason": exc.reason,
            "expires_on": exc.expires_on,
        }
    return Response(
        {
            "salesforce_id": account.salesforce_id,
            "name": account.name,
            "priority": account.priority,
            "label": LABELS.get(account.priority or 0),
            "model": decision.model if decision else None,
            "ruleset_version": (
                decision.ruleset_version.version if decision and decision.ruleset_version else None
            ),
            "decided_by": decision.decided_by if decision else None,
            "decided_at": decision.decided_at if decision else None,
            "cause": decision.cause if decision else None,
            "trace": _trace_json(decision.trace) if decision else [],
            "exception": exception,
        }
    )
