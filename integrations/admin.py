"""Admin for sync runs, cursors and quarantined records (schedules: django-celery-beat)."""

from __future__ import annotations

from django.contrib import admin
from django.utils import timezone

from config.admin_lists import LargeTableAdmin
from integrations.models import QuarantinedRecord, SyncCursor, SyncRun, WorkerHeartbeat


@admin.register(SyncRun)
class SyncRunAdmin(LargeTableAdmin):
    list_display = [
        "id",
        "source",
        "status",
        "started_at",
        "finished_at",
        "created_count",
        "updated_count",
        "unchanged_count",
        "quarantined_count",
        "trigger",
    ]
    list_filter = ["source", "status", "trigger"]
    # No date hierarchy (a DISTINCT over every run); newest first by id.
    readonly_fields = [f.name for f in SyncRun._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(SyncCursor)
class SyncCursorAdmin(admin.ModelAdmin):
    """Clearing a cursor's position makes the next run fetch that object in full."""

    list_display = ["source", "object_name", "position", "updated_at"]
    list_editable = ["position"]
    list_filter = ["source"]


@admin.action(description="Mark as resolved (handled by hand)")
def mark_resolved(modeladmin, request, queryset) -> None:
    queryset.filter(resolved_at__isnull=True).update(resolved_at=timezone.now())


@admin.register(QuarantinedRecord)
class QuarantinedRecordAdmin(LargeTableAdmin):
    list_display = [
        "external_id",
        "source",
        "object_name",
        "reason",
        "sync_run",
        "created_at",
        "resolved_at",
    ]
    list_filter = ["source", "object_name", ("resolved_at", admin.EmptyFieldListFilter)]
    large_search = (None, "external_id")  # a Salesforce id, exactly
    readonly_fields = [
        "source",
        "object_name",
        "external_id",
        "payload",
        "reason",
        "sync_run",
        "created_at",
        "resolved_by_run",
    ]
    actions = [mark_resolved]
    list_select_related = ["sync_run"]


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(admin.ModelAdmin):
    list_display = ["hostname", "seen_at"]
