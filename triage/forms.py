"""Forms of the triage screens. They validate input; the services hold the rules."""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

from portfolio.fields import NOTE_MAX_LENGTH, REASON_MAX_LENGTH, DateField
from portfolio.models import Health
from triage.models import ChurnClass, HealthSignals, TriageRole
from triage.selectors import TAM_SIGNAL_FIELDS


def apply_errors(form: forms.Form, exc: ValidationError) -> None:
    """Put a service's ValidationError on the form (per field when it names one)."""
    if hasattr(exc, "error_dict"):
        for name, errors in exc.error_dict.items():
            form.add_error(name if name in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)


class HealthColourForm(forms.Form):
    """The TAM confirms or overrides the suggested colour."""

    colour = forms.ChoiceField(label="Health colour", choices=Health.choices)
    override_reason = forms.CharField(
        label="Reason (required when you differ from the suggestion)",
        required=False,
        max_length=REASON_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    override_expires_on = DateField(label="Override expires on", required=False)

    def __init__(self, *args, **kwargs) -> None:
        # Unique ids on the account page, which shows several forms with a "colour".
        kwargs.setdefault("auto_id", "id_health_%s")
        super().__init__(*args, **kwargs)


class HealthSignalsForm(forms.ModelForm):
    """The signals only the TAM knows. Empty / "Unknown" = does not count."""

    class Meta:
        model = HealthSignals
        fields = list(TAM_SIGNAL_FIELDS)


class MoveForm(forms.Form):
    """Move a card on the board: the new colour and why."""

    colour = forms.ChoiceField(label="Move to", choices=Health.choices)
    reason = forms.CharField(
        label="Reason", max_length=REASON_MAX_LENGTH, widget=forms.Textarea(attrs={"rows": 2})
    )
    churn_class = forms.ChoiceField(
        label="Churn class (for red)",
        choices=[("", "-")] + list(ChurnClass.choices),
        required=False,
    )


class OpenIssueForm(forms.Form):
    colour = forms.ChoiceField(label="Colour label", choices=Health.choices)
    reason = forms.CharField(
        label="Reason for health score",
        max_length=REASON_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    churn_class = forms.ChoiceField(
        label="Churn class (required for red)",
        choices=[("", "-")] + list(ChurnClass.choices),
        required=False,
    )
    due_date = DateField(label="Due date (next steps)", required=False)

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("auto_id", "id_triage_%s")
        super().__init__(*args, **kwargs)


class IssueEditForm(forms.Form):
    churn_class = forms.ChoiceField(
        label="Churn class", choices=[("", "-")] + list(ChurnClass.choices), required=False
    )
    due_date = DateField(label="Due date (next steps)", required=False)
    success_plan_url = forms.URLField(
        label="Customer Success Plan URL", required=False, assume_scheme="https"
    )
    health_reason = forms.CharField(
        label="Reason for health score",
        required=False,
        max_length=REASON_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 4}),
    )


class UpdateForm(forms.Form):
    body = forms.CharField(
        label="What was done this week",
        max_length=NOTE_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3}),
    )


class TeamMemberForm(forms.Form):
    role = forms.ChoiceField(choices=TriageRole.choices)
    user = forms.ModelChoiceField(
        queryset=get_user_model().objects.filter(is_active=True).order_by("username"),
        required=False,
    )
    name = forms.CharField(required=False, max_length=200, help_text="If not a Portfolio user.")

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        if not data.get("user") and not (data.get("name") or "").strip():
            raise ValidationError("Pick a user or type a name.")
        return data


class AgendaFilterForm(forms.Form):
    region = forms.ChoiceField(required=False)
    min_arr = forms.DecimalField(label="Minimum ARR (USD)", required=False, min_value=0)

    def __init__(self, *args, regions: list[str], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        region = cast(forms.ChoiceField, self.fields["region"])
        region.choices = [("", "All regions")] + [(r, r) for r in regions]


class CallForm(forms.Form):
    notes = forms.CharField(
        required=False, max_length=NOTE_MAX_LENGTH, widget=forms.Textarea(attrs={"rows": 2})
    )
