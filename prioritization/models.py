"""Rule sets (versioned, per region and segment), decisions, exceptions and review runs.

The rules themselves are pure (`prioritization.rules`); these rows hold their parameters
and their results.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone

from portfolio.fields import REASON_MAX_LENGTH
from portfolio.models import Priority, Segment
from prioritization.rules import Params
from triage.health import UsageThresholds


class PriorityModel(models.TextChoices):
    US_ENTERPRISE = "us_enterprise", "US Enterprise flowchart"
    EMEA_ENTERPRISE = "emea_enterprise", "EMEA Enterprise parameters"
    COMMERCIAL = "commercial", "Commercial qualification criteria"
    FLAT_P1 = "flat_p1", "Every TAM-assigned account P1 (AMER CSM)"


class RuleSet(models.Model):
    """Which model a region and segment use, every threshold of it, the portfolio target
    and the engagement expected at each priority. Each save is a new version
    (`RuleSetVersion`); decisions record the version they used."""

    region = models.ForeignKey("portfolio.Region", on_delete=models.PROTECT, related_name="+")
    segment = models.CharField(max_length=20, choices=Segment.choices)
    model = models.CharField(max_length=20, choices=PriorityModel.choices)
    version = models.PositiveIntegerField(default=0, editable=False)

    # Common pre-rules
    onboarding_max_days = models.PositiveIntegerField(
        default=0,
        help_text="Onboarding not complete keeps P1 for at most this many days (0: no limit).",
    )
    digital_tam_trial = models.BooleanField(
        default=False,
        help_text="Public Sector is trialing TAM-assigned digital customers: a TAM-assigned "
        "digital-only account is not P4.",
    )
    # US Enterprise
    uptier_window_months = models.PositiveSmallIntegerField(
        default=6, help_text="Open up-tier opportunity closing within this many months -> P1."
    )
    stage_adoption_hours = models.DecimalField(
        max_digits=4, decimal_places=1, default=Decimal("2.0"), help_text="P1 above (h/week)."
    )
    infrastructure_change_hours = models.DecimalField(
        max_digits=4, decimal_places=1, default=Decimal("2.0"), help_text="P1 above (h/week)."
    )
    onboarding_window_days = models.PositiveSmallIntegerField(
        default=45, help_text='"First 30-45 days of onboarding" -> P1.'
    )
    # Commercial
    commercial_new_customer_days = models.PositiveSmallIntegerField(
        default=90, help_text="A customer whose onboarding started this recently is new (P1)."
    )
    commercial_top_n = models.PositiveSmallIntegerField(
        default=30, help_text="Top N accounts by ARR in the model's population are P1."
    )
    commercial_p2_arr_below = models.DecimalField(
        max_digits=14, decimal_places=2, default=Decimal("75000"), help_text="USD"
    )
    commercial_min_stages = models.PositiveSmallIntegerField(default=3)
    commercial_uptier_window_months = models.PositiveSmallIntegerField(default=9)

    # Portfolio target (balance per TAM)
    p1_target_share = models.DecimalField(
        max_digits=4,
        decimal_places=3,
        null=True,
        blank=True,
        help_text="Share of a book at P1 (US: about 1/3 = 0.333).",
    )
    p1_share_tolerance = models.DecimalField(
        max_digits=4, decimal_places=3, default=Decimal("0.100"), help_text="+/- around the share"
    )
    p1_target_min = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="P1 accounts per TAM, at least (EMEA: 5)."
    )
    p1_target_max = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="P1 accounts per TAM, at most (EMEA: 8)."
    )

    # Engagement expectations per priority (Commercial "Engagement Guidelines")
    p1_onboarding = models.CharField(max_length=200, blank=True, default="")
    p1_call_frequency = models.CharField(max_length=200, blank=True, default="")
    p1_cadence_days = models.PositiveSmallIntegerField(null=True, blank=True)
    p1_success_plan = models.CharField(max_length=200, blank=True, default="")
    p1_ebrs_per_year = models.CharField(max_length=50, blank=True, default="")
    p1_qa_channel = models.CharField(max_length=200, blank=True, default="")
    p2_onboarding = models.CharField(max_length=200, blank=True, default="")
    p2_call_frequency = models.CharField(max_length=200, blank=True, default="")
    p2_cadence_days = models.PositiveSmallIntegerField(null=True, blank=True)
    p2_success_plan = models.CharField(max_length=200, blank=True, default="")
    p2_ebrs_per_year = models.CharField(max_length=50, blank=True, default="")
    p2_qa_channel = models.CharField(max_length=200, blank=True, default="")

    # What Portfolio checks of those expectations (the panel's flags). Each field's help
    # text quotes the handbook; a value that is Portfolio's reading says so.
    p1_ebrs_min_per_year = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        verbose_name="P1 EBRs a year, at least",
        help_text='Counted over the last 12 months. Commercial Priority 1: "Executive Business '
        'Reviews: 1-2 per year" (1). Enterprise: the Priority Definitions give P1 no EBR '
        'number ("Pr1: TAM-led onboarding, monthly cadence call (as minimum), full TAM-led '
        'customer lifecycle"). Empty: no minimum.',
    )
    p2_ebrs_min_per_year = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        verbose_name="P2 EBRs a year, at least",
        help_text='Counted over the last 12 months. Commercial Priority 2: "Executive Business '
        'Reviews: TAM discretion" (empty). Enterprise: "Pr2: 60 day call cadence, EBR, '
        'renewal touch point" (no number). Empty: no minimum.',
    )
    ebrs_reading = models.CharField(
        max_length=400,
        blank=True,
        default="",
        verbose_name="EBR minimums: Portfolio's reading",
        help_text="Why the EBR minimums above are Portfolio's reading rather than a number the "
        "handbook gives (shown beside them). Empty: they are the handbook's.",
    )
    onboarding_cadence_days = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        verbose_name="Onboarding: a call at least every (days)",
        help_text='Commercial Priority 1: "Onboarding: Kick-off call + meet every 2-4 weeks"; '
        'Priority 2: "Kick-off call + digital, check-in calls every 2-4 weeks". While '
        "onboarding is not complete (started, no completion date) a P1/P2 account is "
        "overdue this many days after its last call, if sooner than its priority's cadence. "
        "28 = the upper end of \"2-4 weeks\" (Portfolio's reading). Empty: the priority's "
        "cadence only.",
    )
    p1_full_success_plan_required = models.BooleanField(
        default=False,
        verbose_name="P1 needs a fully green success plan",
        help_text='Commercial Priority 1: "Success Planning: Fully \u201cgreen\u201d success '
        'plan with at least 3 objectives". The Enterprise Priority Definitions ask no success '
        "plan of a P1. On: a P1 account without one is flagged.",
    )

    # Health from product usage (the usage app; triage.health.UsageThresholds). The
    # handbook names each criterion, not its number: every value here is a reading.
    usage_adoption_low_below = models.DecimalField(
        max_digits=3,
        decimal_places=2,
        default=Decimal("0.50"),
        verbose_name="Low user adoption: active users / licensed seats below",
        help_text='Amber: "Low user adoption." 0.50 = fewer than half the seats active in the '
        "month (Portfolio's reading).",
    )
    usage_adoption_healthy_from = models.DecimalField(
        max_digits=3,
        decimal_places=2,
        default=Decimal("0.70"),
        verbose_name="Healthy user adoption: at least",
        help_text='Green: "Healthy user adoption rate." 0.70 (Portfolio\'s reading); between '
        "the two thresholds adoption is no signal.",
    )
    usage_adoption_drop_above = models.DecimalField(
        max_digits=3,
        decimal_places=2,
        default=Decimal("0.20"),
        verbose_name="Adoption dropped: month-over-month fall above",
        help_text='Amber, an early warning of "Low user adoption" ("gaining visibility of '
        'potential churn in advance"): the adoption share fell by more than this share of '
        "itself since the month before. 0.20 (Portfolio's reading).",
    )
    usage_full_lifecycle_stages = models.PositiveSmallIntegerField(
        default=9,
        verbose_name="Full DevOps lifecycle: stages in use, at least",
        help_text='Green: "Using the full GitLab DevOps lifecycle." 9 (Portfolio\'s reading).',
    )
    usage_new_features_min = models.PositiveSmallIntegerField(
        default=1,
        verbose_name="Uses new features: new features used in the month, at least",
        help_text='Green: "Regularly show interest and utilisation in new features." 1 '
        "(Portfolio's reading).",
    )

    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    updated_at = models.DateTimeField(default=timezone.now)

    USAGE_FIELDS: tuple[str, ...] = (
        "usage_adoption_low_below",
        "usage_adoption_healthy_from",
        "usage_adoption_drop_above",
        "usage_full_lifecycle_stages",
        "usage_new_features_min",
    )
    PARAM_FIELDS: tuple[str, ...] = tuple(Params.field_names())
    ENGAGEMENT_FIELDS: tuple[str, ...] = tuple(
        f"p{p}_{name}"
        for p in (1, 2)
        for name in (
            "onboarding",
            "call_frequency",
            "cadence_days",
            "success_plan",
            "ebrs_per_year",
            "qa_channel",
        )
    )
    # Appended to ENGAGEMENT_FIELDS (after the 6 P1 and 6 P2 text fields).
    CHECKED_FIELDS: tuple[str, ...] = (
        "p1_ebrs_min_per_year",
        "p2_ebrs_min_per_year",
        "ebrs_reading",
        "onboarding_cadence_days",
        "p1_full_success_plan_required",
    )
    ENGAGEMENT_FIELDS = ENGAGEMENT_FIELDS + CHECKED_FIELDS
    TARGET_FIELDS: tuple[str, ...] = (
        "p1_target_share",
        "p1_share_tolerance",
        "p1_target_min",
        "p1_target_max",
    )
    VERSIONED_FIELDS: tuple[str, ...] = (
        PARAM_FIELDS + TARGET_FIELDS + ENGAGEMENT_FIELDS + USAGE_FIELDS
    )

    class Meta:
        ordering = ["region", "segment"]
        constraints = [
            models.UniqueConstraint(fields=["region", "segment"], name="ruleset_region_segment")
        ]

    def __str__(self) -> str:
        return f"{self.region_id} {self.get_segment_display()} ({self.model} v{self.version})"

    def params(self) -> Params:
        """The pure rules' parameters from this row (possibly unsaved edits)."""
        return Params(
            model=self.model,
            onboarding_max_days=self.onboarding_max_days,
            digital_tam_trial=self.digital_tam_trial,
            uptier_window_months=self.uptier_window_months,
            stage_adoption_hours=float(self.stage_adoption_hours),
            infrastructure_change_hours=float(self.infrastructure_change_hours),
            onboarding_window_days=self.onboarding_window_days,
            commercial_new_customer_days=self.commercial_new_customer_days,
            commercial_top_n=self.commercial_top_n,
            commercial_p2_arr_below=float(self.commercial_p2_arr_below),
            commercial_min_stages=self.commercial_min_stages,
            commercial_uptier_window_months=self.commercial_uptier_window_months,
        )

    def usage_thresholds(self) -> UsageThresholds:
        """The health engine's usage thresholds from this row."""
        return UsageThresholds(
            adoption_low_below=Fraction(self.usage_adoption_low_below),
            adoption_healthy_from=Fraction(self.usage_adoption_healthy_from),
            adoption_drop_above=Fraction(self.usage_adoption_drop_above),
            full_lifecycle_stages=self.usage_full_lifecycle_stages,
            new_features_min=self.usage_new_features_min,
        )

    def snapshot(self) -> dict[str, Any]:
        """The versioned values as JSON-safe data."""
        out: dict[str, Any] = {}
        for name in self.VERSIONED_FIELDS:
            value = getattr(self, name)
            field = self._meta.get_field(name)
            if isinstance(field, models.DecimalField) and value is not None:
                value = f"{Decimal(value):.{field.decimal_places}f}"  # "2.0", not "2" or "2.00"
            out[name] = value
        return out


class RuleSetVersion(models.Model):
    """One saved state of a rule set: who changed what, when."""

    ruleset = models.ForeignKey(RuleSet, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    values = models.JSONField()
    changes = models.JSONField(default=dict, help_text="{field: [old, new]}")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["ruleset", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["ruleset", "version"], name="ruleset_version_unique")
        ]

    def __str__(self) -> str:
        return f"{self.ruleset_id} v{self.version}"

    def changes_text(self) -> str:
        if not self.changes:
            return "created"
        return "; ".join(f"{k}: {old} → {new}" for k, (old, new) in self.changes.items())


class ReviewCause(models.TextChoices):
    QUARTERLY_REVIEW = "quarterly_review", "Quarterly review"
    SYNC = "sync", "Salesforce sync"
    MANUAL = "manual", "Manual re-evaluation"
    EXCEPTION = "exception", "Exception decided"


class PriorityReview(models.Model):
    """One re-evaluation run (quarterly task, command, sync, exception decision)."""

    cause = models.CharField(max_length=20, choices=ReviewCause.choices)
    triggered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    as_of = models.DateField()
    dry_run = models.BooleanField(default=False)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    evaluated = models.PositiveIntegerField(default=0)
    changed = models.PositiveIntegerField(default=0)
    p1_to_p2 = models.PositiveIntegerField(default=0)
    p2_to_p1 = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0, help_text="No rule set for region+segment")
    exceptions_expired = models.PositiveIntegerField(default=0)
    # The review marker: a review of every account commits per batch, and each batch
    # advances `done_through` (the highest account id applied) in its own transaction, so
    # a review that died resumes after it and never applies a batch twice.
    all_accounts = models.BooleanField(default=False)
    done_through = models.BigIntegerField(
        null=True, blank=True, help_text="Accounts up to this id are applied."
    )

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"{self.get_cause_display()} {self.as_of}"


class ExceptionStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    EXPIRED = "expired", "Expired"


class ExceptionKind(models.TextChoices):
    EXCEPTION = "exception", "Priority exception"
    EMEA_PROPOSAL = "emea_proposal", "EMEA priority proposal (weekly 1:1)"


class PriorityException(models.Model):
    """A TAM (or the account executive, through the TAM) asks for P1 or P2 against the
    model; the TAM's manager approves or rejects it. An approved exception feeds the rules
    until `expires_on`, or until the next quarterly review when that is empty."""

    account = models.ForeignKey(
        "portfolio.Account", on_delete=models.CASCADE, related_name="priority_exceptions"
    )
    kind = models.CharField(
        max_length=20, choices=ExceptionKind.choices, default=ExceptionKind.EXCEPTION
    )
    requested_priority = models.PositiveSmallIntegerField(
        choices=[(Priority.P1, "P1"), (Priority.P2, "P2")]
    )
    reason = models.TextField(max_length=REASON_MAX_LENGTH)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    account_executive = models.ForeignKey(
        "portfolio.SalesforceUser",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="The account executive on whose behalf the request is made, if any.",
    )
    status = models.CharField(
        max_length=10, choices=ExceptionStatus.choices, default=ExceptionStatus.PENDING
    )
    expires_on = models.DateField(
        null=True, blank=True, help_text="Empty: until the next quarterly review."
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.TextField(blank=True, default="", max_length=REASON_MAX_LENGTH)
    ended_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["account", "status"])]
        constraints = [
            models.UniqueConstraint(
                fields=["account"],
                condition=models.Q(status="pending"),
                name="one_pending_exception_per_account",
            )
        ]

    def __str__(self) -> str:
        return f"P{self.requested_priority} for {self.account_id} ({self.status})"


class PriorityDecision(models.Model):
    """A change of an account's priority with the trace that explains it. Written only
    when the priority or the deciding rule changes; `Account.priority` mirrors the latest."""

    account = models.ForeignKey(
        "portfolio.Account", on_delete=models.CASCADE, related_name="priority_decisions"
    )
    priority = models.PositiveSmallIntegerField(choices=Priority.choices)
    previous_priority = models.PositiveSmallIntegerField(
        choices=Priority.choices, null=True, blank=True
    )
    model = models.CharField(max_length=20, choices=PriorityModel.choices)
    ruleset_version = models.ForeignKey(
        RuleSetVersion, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decided_by = models.CharField(max_length=64, help_text="The rule id that decided.")
    trace = models.JSONField(default=list)
    cause = models.CharField(max_length=20, choices=ReviewCause.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    review = models.ForeignKey(
        PriorityReview, on_delete=models.SET_NULL, null=True, blank=True, related_name="decisions"
    )
    exception = models.ForeignKey(
        PriorityException, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-decided_at", "-id"]
        indexes = [
            models.Index(fields=["account", "-decided_at", "-id"]),
            models.Index(fields=["review", "account"]),
            # Django admin's change list order (newest first) over every decision.
            models.Index(fields=["-decided_at", "-id"], name="decision_latest_first"),
        ]

    def __str__(self) -> str:
        return f"{self.account_id}: P{self.priority} by {self.decided_by}"

    @property
    def label(self) -> str:
        return f"P{self.priority}"
