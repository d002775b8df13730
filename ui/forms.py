"""Forms of the portfolio pages: the accounts table's filters and the activity log."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, cast

from django import forms
from django.db.models import Case, IntegerField, Q, QuerySet, Value, When
from django.http import QueryDict
from django.utils import timezone

from portfolio.fields import MIN_DATE, NOTE_MAX_LENGTH, SUBJECT_MAX_LENGTH
from portfolio.models import Account, ActivityKind, Health, Priority, Region, Segment
from portfolio.selectors import name_search

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations

    from engagement.cadence import Cadence

# Sort keys offered to the user -> ORDER BY (name last, so the order is total and stable).
SORTS: dict[str, tuple[str, list[str]]] = {
    "name": ("Name (A-Z)", ["name", "pk"]),
    "-arr": ("ARR (highest first)", ["-arr", "name", "pk"]),
    "arr": ("ARR (lowest first)", ["arr", "name", "pk"]),
    "renewal": ("Renewal (soonest first)", ["renewal_date", "name", "pk"]),
    "priority": ("Priority (P1 first)", ["priority", "-arr", "pk"]),
    "health": ("Health (red first)", ["health_rank", "-arr", "pk"]),
}
RENEWAL_WINDOWS = [
    ("30", "Next 30 days"),
    ("90", "Next 90 days"),
    ("180", "Next 6 months"),
    ("365", "Next 12 months"),
    ("past", "Renewal date passed"),
]
PAGE_SIZES = [25, 50, 100]
# The accounts table's optional columns (the account name always shows). `cols` in the
# query string picks some; none (or all) is every column, so the default URL stays short.
COLUMNS = [
    ("priority", "Priority"),
    ("health", "Health"),
    # Product usage (issue 16): the latest month's adoption and its change.
    ("adoption", "Adoption"),
    ("arr", "ARR"),
    ("region", "Region"),
    ("segment", "Segment"),
    ("renewal", "Renewal"),
    ("cadence", "Last cadence call"),
    ("tam", "TAM"),
]
COLUMN_KEYS = [key for key, _ in COLUMNS]
HEALTH_RANK = {Health.RED: 0, Health.AMBER: 1, Health.YELLOW: 2, Health.GREEN: 3}


class AccountFilterForm(forms.Form):
    """GET form of the accounts table; every field optional so any URL is a valid view."""

    q = forms.CharField(label="Search", required=False, max_length=100)
    priority = forms.TypedChoiceField(
        label="Priority",
        required=False,
        coerce=int,
        empty_value=None,
        choices=[("", "Any priority"), *Priority.choices],
    )
    health = forms.ChoiceField(
        label="Health",
        required=False,
        choices=[
            ("", "Any health"),
            *Health.choices,
            ("at_risk", "At risk (amber or red)"),
            ("none", "Not scored"),
        ],
    )
    region = forms.ChoiceField(label="Region", required=False, choices=[])
    segment = forms.ChoiceField(
        label="Segment", required=False, choices=[("", "Any segment"), *Segment.choices]
    )
    renewal = forms.ChoiceField(
        label="Renewal", required=False, choices=[("", "Any renewal date"), *RENEWAL_WINDOWS]
    )
    overdue = forms.BooleanField(label="Overdue cadence call", required=False)
    sort = forms.ChoiceField(
        label="Sort by", required=False, choices=[(k, v[0]) for k, v in SORTS.items()]
    )
    cols = forms.MultipleChoiceField(label="Columns", required=False, choices=COLUMNS)
    page = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)
    per_page = forms.TypedChoiceField(
        label="Per page",
        required=False,
        coerce=int,
        # django-stubs types empty_value as str | None; Django returns it as given.
        empty_value=PAGE_SIZES[0],  # type: ignore[arg-type]
        choices=[(n, str(n)) for n in PAGE_SIZES],
    )

    def __init__(self, *args, regions: list[str] | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        codes = (
            regions if regions is not None else list(Region.objects.values_list("code", flat=True))
        )
        cast(forms.ChoiceField, self.fields["region"]).choices = [
            ("", "Any region"),
            *((c, c) for c in codes),
        ]

    def cleaned(self) -> dict:
        """The valid filters (invalid ones are dropped, so a bad URL still shows a table)."""
        if self.is_bound:
            self.is_valid()
        data = getattr(self, "cleaned_data", {}) or {}
        return {name: data.get(name) for name in self.fields if name not in self.errors}

    def apply(
        self,
        accounts: QuerySet[WithAnnotations[Account, Cadence]],
        *,
        today: dt.date | None = None,
    ) -> QuerySet:
        """Filter and order an (annotated) accounts queryset."""
        f = self.cleaned()
        today = today or timezone.localdate()
        if f.get("q"):
            term = f["q"].strip()
            accounts = accounts.filter(
                name_search(term, salesforce_id=False) | Q(salesforce_id__iexact=term)
            )
        if f.get("priority"):
            accounts = accounts.filter(priority=f["priority"])
        health = f.get("health")
        if health == "at_risk":
            accounts = accounts.filter(health__in=[Health.AMBER, Health.RED])
        elif health == "none":
            accounts = accounts.filter(health="")
        elif health:
            accounts = accounts.filter(health=health)
        if f.get("region"):
            accounts = accounts.filter(region_id=f["region"])
        if f.get("segment"):
            accounts = accounts.filter(segment=f["segment"])
        renewal = f.get("renewal")
        if renewal == "past":
            accounts = accounts.filter(renewal_date__lt=today)
        elif renewal:
            accounts = accounts.filter(
                renewal_date__gte=today, renewal_date__lte=today + dt.timedelta(days=int(renewal))
            )
        if f.get("overdue"):
            accounts = accounts.filter(cadence_overdue=True)
        sort = f.get("sort") or "name"
        if sort == "health":
            accounts = accounts.annotate(
                health_rank=Case(
                    *(When(health=c, then=Value(r)) for c, r in HEALTH_RANK.items()),
                    default=Value(4),
                    output_field=IntegerField(),
                )
            )
        return accounts.order_by(*SORTS[sort][1])

    def columns(self) -> list[str]:
        """The optional columns to show, in the table's order (every one unless some are
        picked)."""
        picked = set(self.cleaned().get("cols") or ())
        return [key for key in COLUMN_KEYS if key in picked] if picked else list(COLUMN_KEYS)

    def querystring(self, **overrides) -> str:
        """The current filters as a query string, with some values replaced (page, sort)."""
        qd = QueryDict(mutable=True)
        values = {**self.cleaned(), **overrides}
        for name, value in values.items():
            if value in (None, "", False) or (name == "page" and value == 1):
                continue
            if name == "cols":
                picked = [key for key in COLUMN_KEYS if key in set(value)]
                if picked and picked != COLUMN_KEYS:
                    qd.setlist(name, picked)
                continue
            if name == "per_page" and value == PAGE_SIZES[0]:
                continue
            qd[name] = "on" if value is True else str(value)
        return qd.urlencode()


class ActivityForm(forms.Form):
    """Log an activity on the account page (ids prefixed: other apps' forms share it)."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("auto_id", "id_activity_%s")
        super().__init__(*args, **kwargs)

    kind = forms.ChoiceField(label="Kind", choices=ActivityKind.choices)
    occurred_at = forms.DateTimeField(
        label="When",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    subject = forms.CharField(
        label="Subject", max_length=SUBJECT_MAX_LENGTH, widget=forms.TextInput({"data-counter": ""})
    )
    body = forms.CharField(
        label="Notes",
        required=False,
        max_length=NOTE_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    def clean_occurred_at(self) -> dt.datetime:
        value = self.cleaned_data["occurred_at"]
        if value > timezone.now() + dt.timedelta(days=1):
            raise forms.ValidationError("An activity cannot be logged in the future.")
        if value.date() < MIN_DATE:
            raise forms.ValidationError(
                f"{value:%-d %b %Y} is not a plausible date here: enter one from "
                f"{MIN_DATE:%-d %b %Y}."
            )
        return value

    def clean_subject(self) -> str:
        value = self.cleaned_data["subject"].strip()
        if not value:
            raise forms.ValidationError("Say what the activity was about.")
        return value
