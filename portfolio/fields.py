"""Form fields every app's forms share: dates read the same way everywhere, and the
length limits of free text (issue 15, rough edges).

Dates: "01/03/2027" was read US-style (3 January). A date is now accepted as ISO
(2027-03-01, what the browser's date picker sends), with the month in words (1 Mar 2027,
March 1, 2027) or as day/month/year digits only when only one reading exists (25/03/2027,
03/25/2027); "01/03/2027" is refused with both readings named. The format is shown beside
the field. Absurd dates (before 2000, more than 10 years ahead) are a field error.
"""

from __future__ import annotations

import datetime as dt
import re

from django import forms
from django.utils import timezone

# Free text: a reason (an override's why, a card move, an exception request) and the
# longer notes (a week's update, a call's notes). Subjects and titles are 255.
REASON_MAX_LENGTH = 2000
NOTE_MAX_LENGTH = 10_000
SUBJECT_MAX_LENGTH = 255

MIN_DATE = dt.date(2000, 1, 1)
MAX_YEARS_AHEAD = 10
DATE_FORMAT_HELP = "Year-month-day, e.g. 2027-03-01 (or 1 Mar 2027)."
WORD_FORMATS = ["%d %b %Y", "%d %B %Y", "%b %d %Y", "%B %d %Y", "%d-%b-%Y"]
NUMERIC = re.compile(r"^(\d{1,2})[/.](\d{1,2})[/.](\d{4})$")


def max_date(today: dt.date | None = None) -> dt.date:
    today = today or timezone.localdate()
    try:
        return today.replace(year=today.year + MAX_YEARS_AHEAD)
    except ValueError:  # 29 February
        return today.replace(year=today.year + MAX_YEARS_AHEAD, day=28)


def parse_date(text: str) -> dt.date:
    """A date from what a person typed, or ValidationError saying what to type."""
    value = text.strip()
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        pass
    match = NUMERIC.match(value)
    if match:
        a, b, year = (int(g) for g in match.groups())
        readings = set()
        for day, month in ((a, b), (b, a)):
            try:
                readings.add(dt.date(year, month, day))
            except ValueError:
                continue
        if len(readings) == 1:
            return readings.pop()
        if len(readings) == 2:
            first, second = sorted(readings)
            raise forms.ValidationError(
                f"“{value}” could be {first:%-d %B %Y} or {second:%-d %B %Y}: write it as "
                f"year-month-day ({first:%Y-%m-%d}) or with the month in words "
                f"({first:%-d %b %Y}).",
                code="ambiguous",
            )
    words = " ".join(value.replace(",", " ").replace(".", " ").split())
    for fmt in WORD_FORMATS:
        try:
            return dt.datetime.strptime(words, fmt).date()
        except ValueError:
            continue
    raise forms.ValidationError(f"“{value[:40]}” is not a date. {DATE_FORMAT_HELP}", code="invalid")


class DateInput(forms.DateInput):
    """The browser's date picker (it sends ISO); without it, a text box showing the format."""

    input_type = "date"

    def __init__(self, attrs: dict | None = None) -> None:
        super().__init__(
            attrs={"placeholder": "YYYY-MM-DD", "min": MIN_DATE.isoformat(), **(attrs or {})},
            format="%Y-%m-%d",
        )


class DateField(forms.DateField):
    """A date as people write it, unambiguous, between 2000 and ten years ahead."""

    widget = DateInput

    def __init__(self, *args, help_text: str = "", **kwargs) -> None:
        help_text = f"{help_text} {DATE_FORMAT_HELP}".strip()
        super().__init__(*args, help_text=help_text, **kwargs)

    def to_python(self, value):
        if value in self.empty_values:
            return None
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        return parse_date(str(value))

    def validate(self, value) -> None:
        super().validate(value)
        if value is None:
            return
        latest = max_date()
        if value < MIN_DATE or value > latest:
            raise forms.ValidationError(
                f"{value:%-d %b %Y} is not a plausible date here: enter one between "
                f"{MIN_DATE:%-d %b %Y} and {latest:%-d %b %Y}.",
                code="out_of_range",
            )
