"""Admin for the book of business. Salesforce-owned fields are overwritten by the next sync;
TAM, health and priority changes made here are written back to Salesforce."""

from __future__ import annotations

import pghistory
from django.contrib import admin
from django.utils.html import format_html, format_html_join

from config.admin_lists import LargeTableAdmin
from portfolio.history import account_history
from portfolio.models import (
    Account,
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


HISTORY_SHOWN = 20


@admin.register(Account)
class AccountAdmin(LargeTableAdmin):
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
    # Index-served: (name, id), the unique Salesforce id, -arr, (tam, priority).
    ordering = ("name", "pk")
    sortable_by = ("name", "salesforce_id", "arr", "tam")
    large_search = ("name", "salesforce_id")
    raw_id_fields = ["parent", "owner", "tam"]
    list_select_related = ["region", "tam"]
    readonly_fields = [
        "history",
        "salesforce_tam_id",
        "salesforce_health",
        "salesforce_priority",
        "salesforce_modstamp",
        "synced_at",
        "created_at",
        "updated_at",
    ]

    @admin.display(description=f"history (ARR, TAM, health, priority; latest {HISTORY_SHOWN})")
    def history(self, obj: Account) -> str:
        # The latest changes only (two queries), not an inline of every event the
        # account ever had.
        entries = account_history(obj, limit=HISTORY_SHOWN) if obj.pk else []
        if not entries:
            return "—"
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (e.when.strftime("%Y-%m-%d %H:%M"), e.label, e.old_display, e.new_display, e.who)
                for e in entries
            ),
        )
        return format_html(
            "<table><thead><tr><th>When</th><th>Field</th><th>Old</th><th>New</th>"
            "<th>Who</th></tr></thead><tbody>{}</tbody></table>",
            rows,
        )

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
class OpportunityAdmin(LargeTableAdmin):
    list_display = ["name", "account", "type", "stage_name", "close_date", "amount", "is_closed"]
    list_filter = ["type", "is_closed", "is_won"]
    large_search = ("name", "salesforce_id")
    raw_id_fields = ["account"]
    list_select_related = ["account"]


@admin.register(Contact)
class ContactAdmin(LargeTableAdmin):
    list_display = ["name", "account", "persona_list", "email"]
    list_filter = ["personas"]
    large_search = ("name", "salesforce_id")
    raw_id_fields = ["account"]
    list_select_related = ["account"]
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
class ActivityAdmin(LargeTableAdmin):
    # No date hierarchy: its year/month links are a DISTINCT over every activity.
    list_display = ["subject", "account", "kind", "occurred_at", "user"]
    list_filter = ["kind"]
    large_search = ("account__name", "account__salesforce_id")
    raw_id_fields = ["account", "user"]
    list_select_related = ["account", "user"]


@admin.register(SalesforceWriteback)
class SalesforceWritebackAdmin(LargeTableAdmin):
    """What Portfolio decided and has not written to Salesforce yet (read-only: conflicts
    and mass changes are decided on the write-back page, where both values are shown)."""

    list_display = ("account", "field", "base_value", "value", "status", "origin", "decided_at")
    list_filter = ("status", "field", "origin")
    list_select_related = ("account",)
    large_search = ("account__name", "account__salesforce_id")
    readonly_fields = [f.name for f in SalesforceWriteback._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
