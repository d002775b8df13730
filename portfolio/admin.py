"""Admin for the book of business. Salesforce-owned fields are overwritten by the next sync;
TAM, health and priority changes made here are written back to Salesforce."""

from __future__ import annotations

import pghistory
from django.contrib import admin

from portfolio.models import (
    Account,
    AccountEvent,
    Activity,
    Contact,
    Opportunity,
    Region,
    SalesforceUser,
    SalesforceWriteback,
    SalesManager,
    Team,
    WritebackOrigin,
)
from portfolio.services import salesforce_writeback_enqueue


@admin.register(Region)
class RegionAdmin(admin.ModelAdmin):
    list_display = ["code", "name"]


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ["name", "manager", "region"]
    filter_horizontal = ["tams"]
    list_select_related = ["manager", "region"]


@admin.register(SalesforceUser)
class SalesforceUserAdmin(admin.ModelAdmin):
    """Users are matched by email after each sync; a link set here by hand is kept."""

    list_display = ["name", "email", "salesforce_id", "user"]
    search_fields = ["name", "email", "salesforce_id"]
    raw_id_fields = ["user"]
    list_select_related = ["user"]


class AccountEventInline(admin.TabularInline):
    model = AccountEvent
    fk_name = "pgh_obj"
    fields = ["pgh_created_at", "pgh_label", "arr", "tam", "health", "priority", "pgh_context"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ["-pgh_created_at", "-pgh_id"]
    verbose_name_plural = "history (ARR, TAM, health, priority)"

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "salesforce_id",
        "region",
        "segment",
        "arr",
        "tam",
        "health",
        "priority",
    ]
    list_filter = ["region", "segment", "health", "priority", "digital_only"]
    search_fields = ["name", "salesforce_id"]
    raw_id_fields = ["parent", "owner", "tam"]
    list_select_related = ["region", "tam"]
    readonly_fields = [
        "salesforce_tam_id",
        "salesforce_health",
        "salesforce_priority",
        "salesforce_modstamp",
        "synced_at",
        "created_at",
        "updated_at",
    ]
    inlines = [AccountEventInline]

    def save_model(self, request, obj, form, change) -> None:
        with pghistory.context(user=request.user.pk):
            super().save_model(request, obj, form, change)
        changed = [name for name in ("tam", "health", "priority") if name in form.changed_data]
        if changed:
            salesforce_writeback_enqueue(
                account_ids=[obj.pk],
                fields=changed,
                origin=WritebackOrigin.ADMIN_EDIT,
                detail=f"Edited in Django admin by {request.user.get_username()}",
                user=request.user,
            )


@admin.register(Opportunity)
class OpportunityAdmin(admin.ModelAdmin):
    list_display = ["name", "account", "type", "stage_name", "close_date", "amount", "is_closed"]
    list_filter = ["type", "is_closed", "is_won"]
    search_fields = ["name", "salesforce_id", "account_salesforce_id"]
    raw_id_fields = ["account"]
    list_select_related = ["account"]


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    list_display = ["name", "account", "persona_list", "email"]
    list_filter = ["personas"]
    search_fields = ["name", "email"]
    raw_id_fields = ["account"]
    filter_horizontal = ["personas"]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("personas")

    @admin.display(description="personas")
    def persona_list(self, obj: Contact) -> str:
        return ", ".join(str(p) for p in obj.personas.all())


@admin.register(SalesManager)
class SalesManagerAdmin(admin.ModelAdmin):
    """Regional Sales Management: who decides the EMEA Enterprise priority exceptions of
    which regions (the user also needs the "Sales Management" group)."""

    list_display = ["user", "region_list"]
    raw_id_fields = ["user"]
    filter_horizontal = ["regions"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("user").prefetch_related("regions")

    @admin.display(description="regions")
    def region_list(self, obj: SalesManager) -> str:
        return ", ".join(r.code for r in obj.regions.all())


@admin.register(Activity)
class ActivityAdmin(admin.ModelAdmin):
    list_display = ["subject", "account", "kind", "occurred_at", "user"]
    list_filter = ["kind"]
    raw_id_fields = ["account", "user"]
    date_hierarchy = "occurred_at"


@admin.register(SalesforceWriteback)
class SalesforceWritebackAdmin(admin.ModelAdmin):
    """What Portfolio decided and has not written to Salesforce yet (read-only: conflicts
    and mass changes are decided on the write-back page, where both values are shown)."""

    list_display = ("account", "field", "base_value", "value", "status", "origin", "decided_at")
    list_filter = ("status", "field", "origin")
    list_select_related = ("account",)
    search_fields = ("account__salesforce_id",)
    ordering = ("-decided_at",)
    show_full_result_count = False
    readonly_fields = [f.name for f in SalesforceWriteback._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
