"""Forms of the engagement panel. Validation of input shape only; the business rules live
in services and rules. Every form is re-rendered bound on error, so typed input stays."""

from __future__ import annotations

import datetime as dt

from django import forms
from django.utils import timezone

from engagement.emails import picker_label, templates_for_picker
from engagement.models import (
    Disengagement,
    EGroupBrief,
    EngagementKind,
    ObjectiveStatus,
    ProjectTemplate,
)
from engagement.services.brief import EGROUP_FIELDS
from portfolio import datacache
from portfolio.fields import DateField
from portfolio.formcache import RenderCached
from portfolio.models import ActivityKind, CallOutcome, Contact, Persona

DATETIME_LOCAL = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")


class PanelIds(RenderCached):
    """Unique element ids per form: the panel shows many forms on one page (and inside the
    account page), so `id_contact` of two forms must not clash. Unbound, they are rendered
    once per process (portfolio/formcache.py)."""

    id_prefix = "eng"

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("auto_id", f"id_{self.id_prefix}_%s")
        super().__init__(*args, **kwargs)


def _not_blank(value: str, message: str) -> str:
    """The value without surrounding spaces; `message` as the error if nothing is left."""
    value = value.strip()
    if not value:
        raise forms.ValidationError(message)
    return value


def _not_future(value):
    if value and value > timezone.now() + dt.timedelta(minutes=5):
        raise forms.ValidationError("This cannot be logged in the future.")
    return value


class EngagementStartForm(PanelIds, forms.Form):
    id_prefix = "start"
    kind = forms.ChoiceField(label="Engagement", choices=EngagementKind.choices)


class StepForm(PanelIds, forms.Form):
    id_prefix = "step"
    done = forms.BooleanField(required=False)
    # A step the TAM decides: completed as not needed, with why (`note`).
    not_needed = forms.BooleanField(required=False)
    note = forms.CharField(required=False, max_length=200)


class TamAssignForm(PanelIds, forms.Form):
    id_prefix = "tam"
    tam = forms.ModelChoiceField(label="Technical Account Manager", queryset=None)

    def __init__(self, *args, tams=None, tam_rows=None, **kwargs) -> None:
        """`tams`: the users who may be chosen (validated against); `tam_rows`: the same
        users already read, for the options (`choices_from`)."""
        super().__init__(*args, **kwargs)
        self.fields["tam"].queryset = tams
        self.fields["tam"].label_from_instance = lambda u: u.get_full_name() or u.get_username()
        choices_from(self.fields["tam"], tam_rows)


class WelcomeCallForm(PanelIds, forms.Form):
    id_prefix = "welcome"
    occurred_at = forms.DateTimeField(label="Held on", widget=DATETIME_LOCAL)
    notes = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def clean_occurred_at(self):
        return _not_future(self.cleaned_data["occurred_at"])


class ProjectForm(PanelIds, forms.Form):
    id_prefix = "project"
    template = forms.ChoiceField(
        label="Customer Success Plan template", choices=ProjectTemplate.choices
    )


class CadenceForm(PanelIds, forms.Form):
    id_prefix = "cadence"
    kind = forms.ChoiceField(
        choices=[
            (ActivityKind.CADENCE_CALL, "Cadence call"),
            (ActivityKind.EBR, "Executive Business Review"),
        ]
    )
    occurred_at = forms.DateTimeField(label="Scheduled for", widget=DATETIME_LOCAL)
    outcome = forms.ChoiceField(
        choices=CallOutcome.choices,
        initial=CallOutcome.HELD,
        required=False,  # a post without it (an older page) logs a call held
        help_text="Missed or late calls are how Portfolio reads the customer's attendance; "
        "a missed or rescheduled call leaves the cadence call owed.",
    )
    subject = forms.CharField(max_length=255)
    body = forms.CharField(label="Notes", required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def clean_occurred_at(self):
        return _not_future(self.cleaned_data["occurred_at"])

    def clean_outcome(self):
        return self.cleaned_data.get("outcome") or CallOutcome.HELD

    def clean_subject(self):
        return _not_blank(self.cleaned_data["subject"], "Give the call a subject.")


class ObjectiveForm(PanelIds, forms.Form):
    id_prefix = "objective"
    title = forms.CharField(label="Objective", max_length=255)
    status = forms.ChoiceField(choices=ObjectiveStatus.choices, initial=ObjectiveStatus.YELLOW)
    due_date = DateField(required=False)

    def clean_title(self):
        return _not_blank(self.cleaned_data["title"], "Describe the objective.")


class ObjectiveStatusForm(PanelIds, forms.Form):
    id_prefix = "objstatus"
    status = forms.ChoiceField(choices=ObjectiveStatus.choices)
    due_date = DateField(required=False)


class TaskForm(PanelIds, forms.Form):
    id_prefix = "task"
    # A refused form's objective, so the panel shows it under that objective.
    objective_id: int | None = None
    title = forms.CharField(label="Task", max_length=255)
    due_date = DateField(required=False)

    def clean_title(self):
        return _not_blank(self.cleaned_data["title"], "Describe the task.")


def choices_from(field: forms.ModelChoiceField, rows: list | None) -> None:
    """The options of a model choice field from `rows` the page already has (the rows of
    its queryset: the panel's contacts, the TAMs by name): the same options, without
    reading them again. None: the queryset's, read when rendered. The
    queryset stays, so a bound form validates against the database as before."""
    if rows is None:
        return
    iterator = field.iterator(field)
    empty = [("", field.empty_label)] if field.empty_label is not None else []
    field.choices = empty + [iterator.choice(row) for row in rows]


class PersonaForm(PanelIds, forms.Form):
    """The key personas of one contact: "select the persona(s) that apply to them"
    (csm-account-engagement.md). The ticked personas replace the contact's; none ticked
    clears them."""

    id_prefix = "persona"
    contact = forms.ModelChoiceField(queryset=Contact.objects.none())
    personas = forms.MultipleChoiceField(
        label="Key personas",
        choices=Persona.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Tick every persona that applies; none ticked clears them.",
    )

    def __init__(self, *args, account=None, contacts=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["contact"].queryset = Contact.objects.filter(account=account).order_by("name")
        choices_from(self.fields["contact"], contacts)


class DisengagementForm(PanelIds, forms.ModelForm):
    id_prefix = "disengage"

    class Meta:
        model = Disengagement
        fields = [
            "reason",
            "reason_detail",
            "met_with_account_executive",
            "option_support",
            "option_written_howto",
            "option_features_lost",
            "option_self_serve",
            "follow_up_summary",
        ]
        widgets = {
            "reason_detail": forms.Textarea(attrs={"rows": 2}),
            "option_features_lost": forms.Textarea(attrs={"rows": 2}),
            "follow_up_summary": forms.Textarea(attrs={"rows": 5}),
        }


class EmailForm(PanelIds, forms.Form):
    id_prefix = "email"
    template = forms.ChoiceField(
        help_text="Each template says whether it is the handbook's text or Portfolio's own.",
    )
    contact = forms.ModelChoiceField(
        queryset=Contact.objects.none(), required=False, empty_label="(no contact)"
    )
    to = forms.CharField(label="To", required=False, help_text="Comma-separated addresses")
    subject = forms.CharField(max_length=255, required=False)
    body = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 14}))

    def __init__(self, *args, account=None, contacts=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["contact"].queryset = Contact.objects.filter(account=account).order_by("name")
        choices_from(self.fields["contact"], contacts)
        # The latest version of each template (admins edit them in Django admin: a write,
        # so the cached list follows).
        self.templates = datacache.cached(
            "email_templates",
            (),
            lambda: list(templates_for_picker().only("key", "name", "origin", "source", "version")),
        )
        self.fields["template"].choices = [(t.key, picker_label(t)) for t in self.templates]

    def recipients(self) -> list[str]:
        return [a.strip() for a in (self.cleaned_data.get("to") or "").split(",") if a.strip()]

    def clean(self):
        cleaned = super().clean()
        validator = forms.EmailField()
        for address in self.recipients():
            try:
                validator.clean(address)
            except forms.ValidationError:
                self.add_error("to", f"{address!r} is not an email address.")
        return cleaned

    def validate_for_send(self) -> bool:
        """Sending needs recipients, a subject and a body (rendering does not)."""
        if not self.is_valid():
            return False
        if not self.recipients():
            self.add_error("to", "Add at least one recipient.")
        for name in ("subject", "body"):
            if not (self.cleaned_data.get(name) or "").strip():
                self.add_error(name, "Render the template first or write this.")
        return not self.errors


class EGroupBriefForm(PanelIds, forms.ModelForm):
    id_prefix = "brief"

    class Meta:
        model = EGroupBrief
        fields = list(EGROUP_FIELDS)
        widgets = {
            "when": DATETIME_LOCAL,
            **{
                name: forms.Textarea(attrs={"rows": 2})
                for name in (
                    "who",
                    "what",
                    "why",
                    "gitlab_outcome",
                    "customer_outcome",
                    "asks",
                    "agenda",
                    "topics",
                    "links",
                )
            },
        }
