"""Forms of the workspace: snoozing an inbox item, saving a view of the accounts table."""

from __future__ import annotations

from django import forms
from django.http import QueryDict

from ui.forms import AccountFilterForm
from workspace.inbox import KEY_PATTERN
from workspace.models import SavedView


class ItemForm(forms.Form):
    key = forms.RegexField(regex=KEY_PATTERN, max_length=80, widget=forms.HiddenInput)


class SnoozeForm(ItemForm):
    until = forms.DateField(
        label="Snooze until",
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        input_formats=["%Y-%m-%d"],
        help_text="YYYY-MM-DD",
        error_messages={"invalid": "Enter a date as YYYY-MM-DD, e.g. 2027-01-31."},
    )


class SavedViewForm(forms.ModelForm):
    class Meta:
        model = SavedView
        fields = ["name", "querystring", "shared"]
        labels = {"name": "View name", "shared": "Share with everyone"}
        widgets = {"querystring": forms.HiddenInput}
        error_messages = {"name": {"required": "Give the view a name."}}

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError("Give the view a name.")
        return name

    def clean_querystring(self) -> str:
        """Only the table's valid filters, in their canonical order, without the page."""
        value = (self.cleaned_data.get("querystring") or "").lstrip("?")
        return AccountFilterForm(QueryDict(value)).querystring(page=None)
