from django.contrib import admin

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
class HealthSignalsAdmin(admin.ModelAdmin):
    list_display = ("account", "updated_by", "updated_at")
    search_fields = ("account__name",)
    raw_id_fields = ("account",)


@admin.register(HealthAssessment)
class HealthAssessmentAdmin(admin.ModelAdmin):
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
    search_fields = ("account__name",)
    raw_id_fields = ("account",)


class TeamInline(admin.TabularInline):
    model = TriageTeamMember
    extra = 0
    raw_id_fields = ("user",)


class UpdateInline(admin.TabularInline):
    model = TriageUpdate
    extra = 0
    raw_id_fields = ("author",)


@admin.register(TriageIssue)
class TriageIssueAdmin(admin.ModelAdmin):
    list_display = ("title", "status", "colour", "is_new", "churn_class", "region", "milestone")
    list_filter = ("status", "colour", "is_new", "region")
    search_fields = ("title", "account__name")
    raw_id_fields = ("account", "opened_by")
    inlines = [TeamInline, UpdateInline]


@admin.register(TriageEvent)
class TriageEventAdmin(admin.ModelAdmin):
    list_display = ("issue", "kind", "source", "from_colour", "to_colour", "created_at")
    list_filter = ("kind", "source")


@admin.register(CustomerERCall)
class CustomerERCallAdmin(admin.ModelAdmin):
    list_display = ("held_at", "recorded_by")
