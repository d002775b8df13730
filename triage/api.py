"""`POST /api/v1/health/evaluate` (DESIGN.md): evaluate signals, store nothing."""

from __future__ import annotations

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


COUNTS = ("major_releases_behind", "tickets_per_month", "stakeholders", "ebrs_last_12_months")


def _signal_field(name: str) -> serializers.Field:
    if name in health.ENUMS:
        return StrictChoice(choices=health.ENUMS[name], required=False, allow_null=True)
    if name in COUNTS:
        return StrictCount(required=False, allow_null=True)
    return StrictBoolean(required=False, allow_null=True)


class SignalsSerializer(serializers.Serializer):
    def get_fields(self):
        return {name: _signal_field(name) for name in health.SIGNAL_NAMES}

    def to_internal_value(self, data):
        """Per-field errors, including one per unknown signal name (a typo must not be
        silently read as "unknown")."""
        unknown = (
            {name: ["Unknown signal."] for name in set(data) - set(health.SIGNAL_NAMES)}
            if isinstance(data, dict)
            else {}
        )
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            if isinstance(exc.detail, dict):
                raise serializers.ValidationError({**exc.detail, **unknown}) from exc
            raise
        if unknown:
            raise serializers.ValidationError(unknown)
        return value


class EvaluateSerializer(serializers.Serializer):
    signals = SignalsSerializer()


@api_view(["POST"])
def health_evaluate(request: Request) -> Response:
    """Signals in; `{"colour", "score", "reasons": [{"signal", "colour", "detail"}]}` out.
    A null or absent signal is unknown and does not count."""
    serializer = EvaluateSerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    signals = health.Signals(**serializer.validated_data["signals"])
    return Response(health.evaluate(signals).as_dict())
