"""Admin: metric definitions, the releases table, each account's usage summary, and the
upload page (a file, a preview of its first rows, the mapping of its columns to metrics)."""

from __future__ import annotations

import csv
import itertools
import re
import secrets
import tempfile
from pathlib import Path

from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from usage import services
from usage.forms import ACCOUNT, METRIC, PERIOD, VALUE, MappingForm, UploadForm
from usage.models import AccountUsage, Metric, Release

PREVIEW_ROWS = 10
SESSION_KEY = "usage_upload"
TOKEN_RE = re.compile(r"^[0-9a-f]{32}$")


def upload_dir() -> Path:
    folder = Path(tempfile.gettempdir()) / "portfolio-usage-uploads"
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder


@admin.register(Metric)
class MetricAdmin(admin.ModelAdmin):
    list_display = ("name", "label", "unit", "kind", "aggregation", "builtin")
    readonly_fields = ("builtin",)
    change_list_template = "usage/admin_metric_changelist.html"

    def get_readonly_fields(self, request, obj=None):  # type: ignore[no-untyped-def]
        # The built-in metrics feed the health signals: their name and kind stay.
        if obj is not None and obj.builtin:
            return ("name", "kind", "builtin")
        return self.readonly_fields

    def has_delete_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return obj is None or not obj.builtin

    def get_urls(self):  # type: ignore[no-untyped-def]
        view = self.admin_site.admin_view(self.upload_view)
        return [path("upload/", view, name="usage_upload"), *super().get_urls()]

    def upload_view(self, request: HttpRequest) -> HttpResponse:
        """Step 1: the file. Step 2: its first rows and the mapping. Step 3: the import."""
        if not request.user.has_perm("usage.add_metric"):
            return HttpResponse("Admins only.", status=403)
        context = {**self.admin_site.each_context(request), "title": "Upload product usage"}
        step = request.POST.get("step") if request.method == "POST" else None
        if step == "import":
            return self._import(request, context)
        form = UploadForm(request.POST or None, request.FILES or None)
        if step == "upload" and form.is_valid():
            return self._preview(request, context, form.cleaned_data["file"])
        context["form"] = form
        return TemplateResponse(request, "usage/admin_upload.html", context)

    def _preview(self, request: HttpRequest, context: dict, upload) -> HttpResponse:  # type: ignore[no-untyped-def]
        token = secrets.token_hex(16)
        name = upload.name or "upload"
        fmt = "ndjson" if name.endswith((".ndjson", ".jsonl")) else "csv"
        target = upload_dir() / token
        with target.open("wb") as out:
            for chunk in upload.chunks():
                out.write(chunk)
        request.session[SESSION_KEY] = {"token": token, "name": name[:200], "format": fmt}
        context.update(upload_name=name, upload_format=fmt)
        with target.open(encoding="utf-8", errors="replace", newline="") as f:
            if fmt == "ndjson":
                context["preview_lines"] = [
                    line.rstrip("\n") for line in itertools.islice(f, PREVIEW_ROWS)
                ]
            else:
                reader = csv.reader(f)
                header = next(reader, [])
                context["header"] = header
                context["preview_rows"] = list(itertools.islice(reader, PREVIEW_ROWS))
                context["mapping"] = MappingForm(header=header, metrics=_metric_names())
        return TemplateResponse(request, "usage/admin_upload.html", context)

    def _import(self, request: HttpRequest, context: dict) -> HttpResponse:
        saved = request.session.get(SESSION_KEY) or {}
        token = saved.get("token", "")
        target = upload_dir() / token if TOKEN_RE.match(token) else None
        if target is None or not target.exists():
            messages.error(
                request, "The uploaded file is gone (imported already?): upload it again."
            )
            return redirect(reverse("admin:usage_upload"))
        details = {"file": saved["name"], "user": request.user.get_username()}
        with target.open(encoding="utf-8", errors="replace", newline="") as f:
            if saved["format"] == "ndjson":
                rows = services.staged_from_ndjson(f)
            else:
                reader = csv.reader(f)
                header = next(reader, [])
                mapping = MappingForm(request.POST, header=header, metrics=_metric_names())
                if not mapping.is_valid():
                    context.update(
                        upload_name=saved["name"],
                        upload_format="csv",
                        header=header,
                        mapping=mapping,
                    )
                    return TemplateResponse(request, "usage/admin_upload.html", context, status=400)
                rows = _rows_for(reader, mapping.cleaned_data["chosen"])
            result = services.usage_import(
                rows=rows, trigger="upload", where="line", details=details
            )
        target.unlink(missing_ok=True)
        request.session.pop(SESSION_KEY, None)
        context.update(result=result, shown=result.rejected[:20])
        return TemplateResponse(request, "usage/admin_upload.html", context)


def _metric_names() -> list[str]:
    return list(Metric.objects.order_by("name").values_list("name", flat=True))


def _rows_for(reader, chosen: dict[int, str]):  # type: ignore[no-untyped-def]
    index = {role: i for i, role in chosen.items() if role.startswith("@")}
    if METRIC in index:
        mapping = {
            "account": index[ACCOUNT],
            "period": index[PERIOD],
            "metric": index[METRIC],
            "value": index[VALUE],
        }
        return services.staged_from_csv(reader, mapping=mapping)
    metrics = {i: role for i, role in chosen.items() if role and not role.startswith("@")}
    return services.staged_from_wide_csv(
        reader, account=index[ACCOUNT], period=index[PERIOD], metrics=metrics
    )


@admin.register(Release)
class ReleaseAdmin(admin.ModelAdmin):
    """ "Not upgraded / major releases behind" counts the majors released here."""

    list_display = ("version", "released_on")


@admin.register(AccountUsage)
class AccountUsageAdmin(admin.ModelAdmin):
    list_display = ("account", "month", "active_users", "licensed_seats", "adoption", "version")
    list_select_related = ("account",)
    raw_id_fields = ("account",)
    search_fields = ("account__salesforce_id",)
    show_full_result_count = False

    def has_add_permission(self, request) -> bool:  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False
