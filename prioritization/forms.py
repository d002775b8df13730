"""Forms of the prioritization screens."""

from __future__ import annotations

import datetime as dt

from django import forms
from django.utils import timezone

from portfolio.fields import REASON_MAX_LENGTH, DateField


class ExceptionRequestForm(forms.Form):
    """A TAM asks for P1 or P2 against the model (EMEA: proposes a priority)."""

    def __init__(self, *args, **kwargs) -> None:
        # Unique element ids on the account page, which carries other apps' forms too.
        kwargs.setdefault("auto_id", "id_exception_%s")
        super().__init__(*args, **kwargs)

    requested_priority = forms.TypedChoiceField(
        label="Priority wanted", choices=[(1, "P1"), (2, "P2")], coerce=int
    )
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=REASON_MAX_LENGTH,
        help_text="E.g. a large, strategic customer with no LAM; a risk the model does not see.",
    )
    expires_on = DateField(
        required=False,
        help_text="Leave empty: until the next quarterly review.",
    )
    on_behalf_of_ae = forms.BooleanField(
        required=False, label="Requested on behalf of the account executive"
    )

    def clean_reason(self) -> str:
        reason = self.cleaned_data["reason"].strip()
        if len(reason) < 10:
            raise forms.ValidationError("Say why in a sentence (at least 10 characters).")
        return reason

    def clean_expires_on(self) -> dt.date | None:
        expires = self.cleaned_data.get("expires_on")
        if expires is not None and expires <= timezone.localdate():
            raise forms.ValidationError("The expiry date must be in the future.")
        return expires


class ExceptionDecisionForm(forms.Form):
    note = forms.CharField(required=False, max_length=REASON_MAX_LENGTH)
