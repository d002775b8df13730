from django.contrib import admin

from config.admin_lists import LargeTableAdmin
from triage.models import (
    CustomerERCall,
    HealthAssessment,
    HealthSignals,
    TriageEvent,
    TriageIssue,
    TriageTeamMember,
    TriageUpdate,
)


@admin.register(HealthSignals)
class HealthSignalsAdmin(LargeTableAdmin):
    list_display = ("account", "updated_by", "updated_at")
    large_search = ("account__name", "account__salesforce_id")
    raw_id_fields = ("account", "updated_by")
    list_select_related = ("account", "updated_by")


@admin.register(HealthAssessment)
class HealthAssessmentAdmin(LargeTableAdmin):
    list_display = (
        "account",
        "created_at",
        "source",
        "suggested_colour",
        "chosen_colour",
        "colour",
        "is_current",
    )
    list_filter = ("source", "colour", "is_current")
    large_search = ("account__name", "account__salesforce_id")
    raw_id_fields = ("account", "chosen_by", "created_by")
    list_select_related = ("account",)


class TeamInline(admin.TabularInline):
    model = TriageTeamMember
    extra = 0
    raw_id_fields = ("user",)


class UpdateInline(admin.TabularInline):
    model = TriageUpdate
    extra = 0
    raw_id_fields = ("author",)


@admin.register(TriageIssue)
class TriageIssueAdmin(LargeTableAdmin):
    list_display = ("title", "status", "colour", "is_new", "churn_class", "region", "milestone")
    list_filter = ("status", "colour", "is_new", "region")
    large_search = ("account__name", "account__salesforce_id")
    raw_id_fields = ("account", "opened_by")
    inlines = [TeamInline, UpdateInline]


@admin.register(TriageEvent)
class TriageEventAdmin(LargeTableAdmin):
    list_display = ("issue", "kind", "source", "from_colour", "to_colour", "created_at")
    list_filter = ("kind", "source")
    list_select_related = ("issue",)
    raw_id_fields = ("issue", "actor")


@admin.register(CustomerERCall)
class CustomerERCallAdmin(admin.ModelAdmin):
    list_display = ("held_at", "recorded_by")
