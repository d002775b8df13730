from django.contrib import admin

from engagement.models import (
    CollaborationProject,
    CustomerIssue,
    Disengagement,
    EGroupBrief,
    Engagement,
    EngagementStep,
    SuccessObjective,
    SuccessTask,
)


class EngagementStepInline(admin.TabularInline):
    model = EngagementStep
    extra = 0
    raw_id_fields = ["done_by"]


@admin.register(Engagement)
class EngagementAdmin(admin.ModelAdmin):
    list_display = ["account", "kind", "stage", "started_at", "welcome_call_at", "ended_at"]
    list_filter = ["kind", "stage"]
    search_fields = ["account__name", "account__salesforce_id"]
    raw_id_fields = ["account", "started_by"]
    inlines = [EngagementStepInline]


@admin.register(CollaborationProject)
class CollaborationProjectAdmin(admin.ModelAdmin):
    list_display = ["account", "path_with_namespace", "template", "status", "requested_at"]
    list_filter = ["status", "template"]
    search_fields = ["account__name", "path", "path_with_namespace"]
    raw_id_fields = ["account", "requested_by"]


class SuccessTaskInline(admin.TabularInline):
    model = SuccessTask
    extra = 0


@admin.register(SuccessObjective)
class SuccessObjectiveAdmin(admin.ModelAdmin):
    list_display = ["title", "account", "status", "due_date"]
    list_filter = ["status"]
    search_fields = ["title", "account__name"]
    raw_id_fields = ["account", "created_by"]
    inlines = [SuccessTaskInline]


@admin.register(CustomerIssue)
class CustomerIssueAdmin(admin.ModelAdmin):
    list_display = ["title", "account", "iid", "awaiting_answer", "waiting_since"]
    list_filter = ["awaiting_answer"]
    raw_id_fields = ["account"]


@admin.register(Disengagement)
class DisengagementAdmin(admin.ModelAdmin):
    list_display = ["account", "reason", "previous_tam", "recorded_at"]
    list_filter = ["reason"]
    raw_id_fields = ["account", "engagement", "previous_tam", "recorded_by"]


@admin.register(EGroupBrief)
class EGroupBriefAdmin(admin.ModelAdmin):
    list_display = ["account", "egroup_member", "when", "updated_at"]
    raw_id_fields = ["account", "updated_by"]
