"""`POST /api/v1/health/evaluate` (DESIGN.md): evaluate signals, store nothing.

The strict JSON input both evaluate APIs share (`POST /api/v1/priority/evaluate` imports
it): a yes/no is a JSON boolean only ("yes", 1 or "on" is a 400, not a guess), a number a
JSON number, a choice a string; a null is the same as leaving the field out; an unknown
field is a per-field 400 listing the valid names (a typo must not be silently read as
"unknown" or as the default).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from rest_framework import serializers
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from triage import health


class StrictBoolean(serializers.Field):
    """true/false/null only: "yes" or 1 is a 400, not a guess."""

    default_error_messages = {"invalid": "Must be true, false or null."}

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid")
        return data

    def to_representation(self, value):
        return value


class StrictCount(serializers.Field):
    default_error_messages = {"invalid": "Must be a whole number >= 0 or null."}

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int) or data < 0:
            self.fail("invalid")
        return data

    def to_representation(self, value):
        return value


class StrictChoice(serializers.ChoiceField):
    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid_choice", input=data)
        return super().to_internal_value(data)


class StrictIntChoice(serializers.ChoiceField):
    """One of integer choices, given as a JSON integer (not "1", not true)."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid_choice", input=data)
        return super().to_internal_value(data)


class StrictString(serializers.CharField):
    default_error_messages = {"invalid": "Must be a string."}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictNumber(serializers.Field):
    """A JSON number within bounds (`integer`: a whole one); not a string, not true/false."""

    default_error_messages = {
        "invalid": "Must be a number.",
        "not_integer": "Must be a whole number.",
        "min_value": "Must be at least {min_value}.",
        "max_value": "Must be at most {max_value}.",
    }

    def __init__(
        self,
        *,
        integer: bool = False,
        min_value: float | None = None,
        max_value: float | None = None,
        **kwargs: Any,
    ) -> None:
        self.integer, self.min_value, self.max_value = integer, min_value, max_value
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int | float):
            self.fail("invalid")
        if self.integer and not isinstance(data, int):
            self.fail("not_integer")
        if data != data or data in (float("inf"), float("-inf")):  # NaN / Infinity
            self.fail("invalid")
        if self.min_value is not None and data < self.min_value:
            self.fail("min_value", min_value=self.min_value)
        if self.max_value is not None and data > self.max_value:
            self.fail("max_value", max_value=self.max_value)
        return int(data) if self.integer else float(data)

    def to_representation(self, value):
        return value


def unknown_field_errors(
    data: Mapping[str, Any], valid: Iterable[str], what: str = "field"
) -> dict[str, list[str]]:
    valid = list(valid)
    names = ", ".join(valid)
    return {
        str(name): [f"Unknown {what}; the valid {what}s are: {names}."]
        for name in data
        if name not in valid
    }


class StrictSerializer(serializers.Serializer):
    """A serializer whose null values are the same as leaving the field out (its default,
    or "required") and whose every unknown key is a per-field error naming the valid ones,
    reported together with the other fields' errors."""

    unknown_what = "field"

    def to_internal_value(self, data):
        if not isinstance(data, Mapping):
            return super().to_internal_value(data)
        unknown = unknown_field_errors(data, self.fields, self.unknown_what)
        present = {key: value for key, value in data.items() if value is not None}
        try:
            value = super().to_internal_value(present)
        except serializers.ValidationError as exc:
            if isinstance(exc.detail, dict):
                raise serializers.ValidationError({**exc.detail, **unknown}) from exc
            raise
        if unknown:
            raise serializers.ValidationError(unknown)
        return value


COUNTS = ("major_releases_behind", "tickets_per_month", "stakeholders", "ebrs_last_12_months")


def _signal_field(name: str) -> serializers.Field:
    if name in health.ENUMS:
        return StrictChoice(choices=health.ENUMS[name], required=False, allow_null=True)
    if name in COUNTS:
        return StrictCount(required=False, allow_null=True)
    return StrictBoolean(required=False, allow_null=True)


class SignalsSerializer(StrictSerializer):
    """Per-field errors, including one per unknown signal name (a typo must not be silently
    read as "unknown"); a null signal is unknown, as an absent one."""

    unknown_what = "signal"

    def get_fields(self):
        return {name: _signal_field(name) for name in health.SIGNAL_NAMES}


class EvaluateSerializer(StrictSerializer):
    signals = SignalsSerializer()


@api_view(["POST"])
def health_evaluate(request: Request) -> Response:
    """Signals in; `{"colour", "score", "reasons": [{"signal", "colour", "detail"}]}` out.
    A null or absent signal is unknown and does not count."""
    serializer = EvaluateSerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    signals = health.Signals(**serializer.validated_data["signals"])
    return Response(health.evaluate(signals).as_dict())
