"""The admin upload page's forms: the file, then the mapping of its columns."""

from __future__ import annotations

from django import forms

IGNORE, ACCOUNT, PERIOD, METRIC, VALUE = "", "@account", "@period", "@metric", "@value"
MAX_UPLOAD_BYTES = 200 * 1024 * 1024


class UploadForm(forms.Form):
    file = forms.FileField(
        help_text="CSV with a header row (account, period, and either metric + value columns "
        "or one column per metric), or NDJSON (one JSON row a line)."
    )

    def clean_file(self):  # type: ignore[no-untyped-def]
        upload = self.cleaned_data["file"]
        if upload.size > MAX_UPLOAD_BYTES:
            raise forms.ValidationError(
                f"{upload.size:,} bytes; upload at most {MAX_UPLOAD_BYTES:,} "
                "(larger files: manage.py import_usage)."
            )
        return upload


class MappingForm(forms.Form):
    """One choice per CSV column: the account, the period, the metric and value of a long
    file, a metric of a wide file, or ignored."""

    def __init__(self, *args, header: list[str], metrics: list[str], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.header = header
        choices = [
            (IGNORE, "(ignore)"),
            (ACCOUNT, "Account (Salesforce id)"),
            (PERIOD, "Period (YYYY-MM or YYYY-MM-DD)"),
            (METRIC, "Metric name (long file)"),
            (VALUE, "Value (long file)"),
        ] + [(name, f"Metric: {name}") for name in metrics]
        for i, name in enumerate(header):
            key = name.strip().lower()
            guess = {"account": ACCOUNT, "period": PERIOD, "metric": METRIC, "value": VALUE}.get(
                key, key if key in metrics else IGNORE
            )
            self.fields[f"col_{i}"] = forms.ChoiceField(
                label=name or f"column {i + 1}", choices=choices, required=False, initial=guess
            )

    def clean(self):  # type: ignore[no-untyped-def]
        data = super().clean()
        chosen = {i: data.get(f"col_{i}") or IGNORE for i in range(len(self.header))}
        roles = list(chosen.values())
        for role, label in ((ACCOUNT, "an account"), (PERIOD, "a period")):
            if roles.count(role) != 1:
                raise forms.ValidationError(f"Map exactly one column to {label}.")
        long = METRIC in roles or VALUE in roles
        wide = [i for i, r in chosen.items() if r and not r.startswith("@")]
        if long and (roles.count(METRIC) != 1 or roles.count(VALUE) != 1):
            raise forms.ValidationError("A long file needs one metric column and one value column.")
        if long and wide:
            raise forms.ValidationError(
                "Either metric + value columns, or one column per metric; not both."
            )
        if not long and not wide:
            raise forms.ValidationError("Map a metric and a value column, or columns to metrics.")
        data["chosen"] = chosen
        return data
