"""Admins edit rule sets here. Every save is a new version (who changed what), and a
change is previewed first: how many accounts would move P1->P2 and P2->P1."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.utils import flatten_fieldsets, unquote
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from config.admin_lists import LargeTableAdmin
from prioritization.models import (
    PriorityDecision,
    PriorityException,
    PriorityReview,
    RuleSet,
    RuleSetVersion,
)
from prioritization.rules import MODEL_PARAMS, PRE_PARAMS, rule_name
from prioritization.selectors import ruleset_whatif
from prioritization.services import ruleset_save

CONFIRM = "_whatif_confirm"


class RuleSetVersionInline(admin.TabularInline):
    model = RuleSetVersion
    extra = 0
    can_delete = False
    fields = ("version", "created_at", "created_by", "changes_text")
    readonly_fields = fields
    ordering = ("-version",)
    verbose_name = "version"
    verbose_name_plural = "Version history (who changed what)"

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @admin.display(description="changes")
    def changes_text(self, obj: RuleSetVersion) -> str:
        return obj.changes_text()


@admin.register(RuleSet)
class RuleSetAdmin(admin.ModelAdmin):
    list_display = ("__str__", "region", "segment", "model", "version", "updated_by", "updated_at")
    list_filter = ("model", "segment", "region")
    readonly_fields = ("version", "updated_by", "updated_at")
    inlines = [RuleSetVersionInline]
    # Each model's own parameters (MODEL_PARAMS): a rule set shows only what its model
    # reads, so an edit the what-if previews as "0 would move" is never one that does
    # nothing. The add form, with no model yet, shows every group.
    PARAMETER_GROUPS: tuple[tuple[str, str | None], ...] = (
        ("Common pre-rules (every model)", None),
        ("US Enterprise flowchart", "us_enterprise"),
        ("Commercial criteria", "commercial"),
    )
    OTHER_FIELDSETS = (
        (
            "Portfolio target (balance per TAM)",
            {"fields": RuleSet.TARGET_FIELDS},
        ),
        ("Engagement expected at P1", {"fields": RuleSet.ENGAGEMENT_FIELDS[:6]}),
        (
            "Engagement expected at P2",
            {"fields": RuleSet.ENGAGEMENT_FIELDS[6 : -len(RuleSet.CHECKED_FIELDS)]},
        ),
        (
            "What Portfolio checks (EBRs counted over the last 12 months, onboarding cadence, "
            "the full success plan)",
            {"fields": RuleSet.CHECKED_FIELDS},
        ),
        (
            "Health from product usage (thresholds are Portfolio's readings)",
            {"fields": RuleSet.USAGE_FIELDS},
        ),
    )
    HELP_TEXTS = {
        # The model's own help text still says the trial keeps such an account out of P4,
        # the reading before issue 14 (docs/rules.md, "Pr4 and the Public Sector trial").
        "digital_tam_trial": 'Public Sector is "trialing a TAM-assigned digital customer": '
        "on, a TAM-assigned digital-only account is P4 too; off, a TAM-assigned account is "
        "never P4.",
    }

    def get_fieldsets(self, request: HttpRequest, obj: RuleSet | None = None):
        model = obj.model if obj is not None else None
        groups: list = []
        for title, owner in self.PARAMETER_GROUPS:
            if owner is None:
                names = PRE_PARAMS
            elif model is None or model == owner:
                names = tuple(n for n in MODEL_PARAMS[owner] if n not in PRE_PARAMS)
            else:
                continue
            groups.append((title, {"fields": names}))
        if model is not None:
            groups[-1][1]["description"] = (
                f"Only the parameters the {obj.get_model_display()} model reads. To use "
                "another model, choose it above and save: its parameters show next."
            )
        return (
            (
                None,
                {"fields": ("region", "segment", "model", "version", "updated_by", "updated_at")},
            ),
            *groups,
            *self.OTHER_FIELDSETS,
        )

    def get_form(self, request: HttpRequest, obj=None, change: bool = False, **kwargs):
        kwargs.setdefault("help_texts", self.HELP_TEXTS)
        return super().get_form(request, obj, change, **kwargs)

    def save_model(self, request: HttpRequest, obj: RuleSet, form, change: bool) -> None:
        ruleset_save(ruleset=obj, changed_by=request.user)  # type: ignore[arg-type]

    def changeform_view(
        self, request: HttpRequest, object_id=None, form_url="", extra_context=None
    ) -> HttpResponse:
        """On a valid change, show the what-if page first; it posts the same data back
        with `_whatif_confirm` to save."""
        if request.method == "POST" and object_id and CONFIRM not in request.POST:
            preview = self._whatif_response(request, unquote(object_id))
            if preview is not None:
                return preview
        return super().changeform_view(request, object_id, form_url, extra_context)

    def _whatif_response(self, request: HttpRequest, object_id: str) -> HttpResponse | None:
        obj = self.get_object(request, object_id)
        if obj is None or not self.has_change_permission(request, obj):
            return None
        fields = flatten_fieldsets(self.get_fieldsets(request, obj))
        form_class = self.get_form(request, obj, change=True, fields=fields)
        stored = {name: getattr(obj, name) for name in fields}
        form = form_class(request.POST, request.FILES, instance=obj)
        if not form.is_valid() or not form.has_changed():
            return None  # the normal view shows the errors, or saves nothing new
        edited = form.save(commit=False)
        whatif = ruleset_whatif(edited=edited)
        changes = [
            (form.fields[name].label, stored[name], getattr(edited, name))
            for name in form.changed_data
        ]
        replay = [
            (key, value)
            for key, values in request.POST.lists()
            if key != "csrfmiddlewaretoken"
            for value in values
        ]
        context = {
            **self.admin_site.each_context(request),
            "title": f"Preview changes to {obj}",
            "opts": self.opts,
            "original": obj,
            "changes": changes,
            "whatif": whatif,
            "replay": replay,
            "confirm_name": CONFIRM,
        }
        return TemplateResponse(request, "admin/prioritization/ruleset/whatif.html", context)


@admin.register(RuleSetVersion)
class RuleSetVersionAdmin(admin.ModelAdmin):
    list_display = ("ruleset", "version", "created_by", "created_at", "changes_text")
    list_filter = ("ruleset__region", "ruleset__segment")
    readonly_fields = ("ruleset", "version", "values", "changes", "created_by", "created_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(PriorityDecision)
class PriorityDecisionAdmin(LargeTableAdmin):
    list_display = (
        "account",
        "priority",
        "previous_priority",
        "decided_by_rule",
        "cause",
        "decided_at",
    )
    list_filter = ("cause", "model", "priority")
    # (decided_at, id) descending: the index `decision_latest_first`.
    ordering = ("-decided_at", "-id")
    sortable_by = ("decided_at",)
    large_search = ("account__name", "account__salesforce_id")
    list_select_related = ("account",)
    raw_id_fields = ("account", "exception", "review", "ruleset_version", "actor")
    exclude = ("decided_by",)
    readonly_fields = ("decided_by_rule",)

    @admin.display(description="decided by", ordering="decided_by")
    def decided_by_rule(self, obj: PriorityDecision) -> str:
        # The rule's name, not its id ("uptier_opportunity" means nothing to a reader).
        return rule_name(obj.decided_by)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(PriorityException)
class PriorityExceptionAdmin(LargeTableAdmin):
    list_display = (
        "account",
        "kind",
        "requested_priority",
        "status",
        "requested_by",
        "decided_by",
        "expires_on",
        "created_at",
    )
    list_filter = ("status", "kind", "requested_priority")
    large_search = ("account__name", "account__salesforce_id")
    list_select_related = ("account", "requested_by", "decided_by")
    raw_id_fields = ("account", "account_executive", "requested_by")
    # Decisions go through the manager's screen (the service checks who may decide).
    readonly_fields = ("status", "decided_by", "decided_at", "decision_note", "ended_at")


@admin.register(PriorityReview)
class PriorityReviewAdmin(admin.ModelAdmin):
    list_display = (
        "started_at",
        "cause",
        "as_of",
        "evaluated",
        "changed",
        "p1_to_p2",
        "p2_to_p1",
        "triggered_by",
    )
    list_filter = ("cause",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False
