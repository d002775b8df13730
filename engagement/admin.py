from django import forms
from django.contrib import admin

from config.admin_lists import LargeTableAdmin
from engagement.emails import template_syntax_error
from engagement.models import (
    CollaborationProject,
    CustomerIssue,
    Disengagement,
    EGroupBrief,
    EmailTemplate,
    EmailTemplateVersion,
    Engagement,
    EngagementStep,
    SuccessObjective,
    SuccessTask,
)
from engagement.services.emails import email_template_save


class EngagementStepInline(admin.TabularInline):
    model = EngagementStep
    extra = 0
    raw_id_fields = ["done_by"]


@admin.register(Engagement)
class EngagementAdmin(LargeTableAdmin):
    list_display = ["account", "kind", "stage", "started_at", "welcome_call_at", "ended_at"]
    list_filter = ["kind", "stage"]
    large_search = ("account__name", "account__salesforce_id")
    list_select_related = ["account"]
    raw_id_fields = ["account", "started_by"]
    inlines = [EngagementStepInline]


@admin.register(CollaborationProject)
class CollaborationProjectAdmin(LargeTableAdmin):
    list_display = ["account", "path_with_namespace", "template", "status", "requested_at"]
    list_filter = ["status", "template"]
    large_search = ("account__name", "account__salesforce_id")
    list_select_related = ["account"]
    raw_id_fields = ["account", "requested_by"]


class SuccessTaskInline(admin.TabularInline):
    model = SuccessTask
    extra = 0


@admin.register(SuccessObjective)
class SuccessObjectiveAdmin(LargeTableAdmin):
    list_display = ["title", "account", "status", "due_date"]
    list_filter = ["status"]
    large_search = ("account__name", "account__salesforce_id")
    list_select_related = ["account"]
    raw_id_fields = ["account", "created_by"]
    inlines = [SuccessTaskInline]


@admin.register(CustomerIssue)
class CustomerIssueAdmin(LargeTableAdmin):
    list_display = ["title", "account", "iid", "awaiting_answer", "waiting_since"]
    list_filter = ["awaiting_answer"]
    raw_id_fields = ["account"]
    list_select_related = ["account"]


@admin.register(Disengagement)
class DisengagementAdmin(LargeTableAdmin):
    list_display = ["account", "reason", "previous_tam", "recorded_at"]
    list_filter = ["reason"]
    raw_id_fields = ["account", "engagement", "previous_tam", "recorded_by"]
    list_select_related = ["account", "previous_tam"]


@admin.register(EGroupBrief)
class EGroupBriefAdmin(LargeTableAdmin):
    list_display = ["account", "egroup_member", "when", "updated_at"]
    raw_id_fields = ["account", "updated_by"]
    list_select_related = ["account"]


class EmailTemplateVersionInline(admin.TabularInline):
    """Every saved version, newest first: read-only history."""

    model = EmailTemplateVersion
    extra = 0
    can_delete = False
    fields = ["version", "saved_by", "saved_at", "origin", "subject", "body"]
    readonly_fields = fields
    ordering = ["-version"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class EmailTemplateForm(forms.ModelForm):
    class Meta:
        model = EmailTemplate
        fields = ["key", "position", "name", "origin", "source", "subject", "body"]
        widgets = {"body": forms.Textarea(attrs={"rows": 24, "cols": 100})}

    def clean(self):
        cleaned = super().clean()
        for name in ("subject", "body"):
            error = template_syntax_error(cleaned.get(name) or "")
            if error:
                self.add_error(name, f"Not a valid template: {error}")
        return cleaned


@admin.register(EmailTemplate)
class EmailTemplateAdmin(admin.ModelAdmin):
    """The email templates of the engagement panel. Each save is a new version
    (`services.email_template_save`); the picker uses the latest."""

    form = EmailTemplateForm
    list_display = ["name", "origin", "version", "updated_by", "updated_at"]
    list_filter = ["origin"]
    readonly_fields = ["version", "updated_by", "updated_at"]
    inlines = [EmailTemplateVersionInline]

    def get_readonly_fields(self, request, obj=None):
        # The key is how the code and the picker name a template: fixed once created.
        return [*self.readonly_fields, "key"] if obj is not None else self.readonly_fields

    def save_model(self, request, obj, form, change) -> None:
        email_template_save(template=obj, user=request.user)
