"""Health assessments and the Customer ER triage board (handbook/tam-account-triage.md)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from portfolio.fields import REASON_MAX_LENGTH
from portfolio.models import Account, Health
from triage import labels as triage_labels


class UserAdoption(models.TextChoices):
    LOW = "low", "Low user adoption"
    HEALTHY = "healthy", "Healthy user adoption rate"


class UseCases(models.TextChoices):
    ACHIEVED = "achieved", "Successful use-cases"
    NOT_DEFINED = "not_defined", "Use-cases not clearly defined"
    NOT_ACHIEVED = "not_achieved", "Original use-cases not achieved"


class CadenceAttendance(models.TextChoices):
    ALWAYS = "always", "Always show up"
    SOMETIMES_LATE = "sometimes_late", "Occasionally absent or late"
    OFTEN_ABSENT = "often_absent", "Frequently absent or late"


class HealthSignals(models.Model):
    """What the TAM knows about an account that Portfolio's data does not say.

    Every field is nullable: empty means unknown, and unknown signals do not count.
    NPS, EBRs, cadence attendance and onboarding are read from Portfolio's data
    (`triage.selectors.signals_for_accounts`); `cadence_attendance` here overrides the
    data when the TAM knows better (calls held but always late)."""

    account = models.OneToOneField(Account, on_delete=models.CASCADE, related_name="health_signals")
    downgrading_or_cancelling = models.BooleanField(null=True, blank=True)
    no_communication = models.BooleanField(null=True, blank=True)
    no_executive_sponsor_access = models.BooleanField(null=True, blank=True)
    user_adoption = models.CharField(
        max_length=10, choices=UserAdoption.choices, blank=True, default=""
    )
    lack_of_response = models.BooleanField(null=True, blank=True)
    complaints = models.BooleanField(null=True, blank=True)
    champion_lost = models.BooleanField(null=True, blank=True)
    use_cases = models.CharField(max_length=15, choices=UseCases.choices, blank=True, default="")
    success_defined = models.BooleanField(null=True, blank=True)
    major_releases_behind = models.PositiveSmallIntegerField(null=True, blank=True)
    cadence_attendance = models.CharField(
        max_length=15, choices=CadenceAttendance.choices, blank=True, default=""
    )
    tickets_per_month = models.PositiveSmallIntegerField(null=True, blank=True)
    contributes_to_issues = models.BooleanField(null=True, blank=True)
    acquired_by_competitor_user = models.BooleanField(null=True, blank=True)
    little_usage_info = models.BooleanField(null=True, blank=True)
    missing_key_contacts = models.BooleanField(null=True, blank=True)
    stakeholders = models.PositiveSmallIntegerField(null=True, blank=True)
    full_devops_lifecycle = models.BooleanField(null=True, blank=True)
    regular_communication = models.BooleanField(null=True, blank=True)
    uses_new_features = models.BooleanField(null=True, blank=True)
    interested_in_upgrading = models.BooleanField(null=True, blank=True)
    regular_feedback = models.BooleanField(null=True, blank=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "health signals"

    def __str__(self) -> str:
        return f"Health signals of {self.account}"


class AssessmentSource(models.TextChoices):
    AUTOMATIC = "automatic", "Automatic run"
    TAM = "tam", "TAM's choice"
    BOARD = "board", "Triage board move"
    RECONCILIATION = "reconciliation", "Five-minute check fix"


class HealthAssessment(models.Model):
    """One row of an account's health history; the row with `is_current` is the state.

    `suggested_colour` is what the rules say; `chosen_colour` what the TAM chose (kept
    across automatic runs until it expires); `colour` the effective one written to
    Account.health: the chosen colour, or the suggestion when nothing (valid) is chosen."""

    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, related_name="health_assessments"
    )
    created_at = models.DateTimeField()
    source = models.CharField(max_length=20, choices=AssessmentSource.choices)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    suggested_colour = models.CharField(max_length=10, choices=Health.choices, blank=True)
    score = models.DecimalField(max_digits=4, decimal_places=2, null=True, blank=True)
    reasons = models.JSONField(default=list, blank=True)
    signals = models.JSONField(default=dict, blank=True)
    chosen_colour = models.CharField(max_length=10, choices=Health.choices, blank=True)
    chosen_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    chosen_at = models.DateTimeField(null=True, blank=True)
    override_reason = models.TextField(blank=True, default="", max_length=REASON_MAX_LENGTH)
    override_expires_on = models.DateField(null=True, blank=True)
    colour = models.CharField(max_length=10, choices=Health.choices, blank=True)
    previous_colour = models.CharField(max_length=10, choices=Health.choices, blank=True)
    note = models.CharField(max_length=255, blank=True, default="")
    is_current = models.BooleanField(default=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["account", "-created_at"]),
            # The agenda's "colour changes since the last call" over a whole company, and
            # Django admin's change list: newest first without sorting every assessment.
            models.Index(fields=["-created_at", "-id"], name="assessment_latest_first"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["account"], condition=Q(is_current=True), name="one_current_assessment"
            ),
            models.CheckConstraint(
                condition=Q(chosen_colour="")
                | Q(suggested_colour="")
                | Q(chosen_colour=models.F("suggested_colour"))
                | ~Q(override_reason=""),
                name="override_needs_reason",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.account}: {self.colour or 'unscored'} ({self.created_at:%Y-%m-%d})"

    @property
    def is_override(self) -> bool:
        return bool(self.chosen_colour) and self.chosen_colour != self.suggested_colour

    @property
    def differs(self) -> bool:
        """The automatic suggestion and the TAM's choice disagree (shown, never merged)."""
        return bool(self.chosen_colour and self.suggested_colour) and self.is_override


class IssueStatus(models.TextChoices):
    OPEN = "open", "Open"
    CLOSED = "closed", "Closed"


class ChurnClass(models.TextChoices):
    """ "Triage Labels for at risk (~red) accounts" (Churn Classification)."""

    EA = "E&A", "E&A"
    EU = "E&U", "E&U"
    UA = "U&A", "U&A"
    UU = "U&U", "U&U"


class TriageIssue(models.Model):
    """An issue of the Account Triage project, mirrored to GitLab.

    Body fields follow the handbook's issue template; the labels are the colour, ~New
    until reviewed, the churn class (required for red) and the account's region."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="triage_issues")
    title = models.CharField(max_length=255)
    status = models.CharField(max_length=10, choices=IssueStatus.choices, default=IssueStatus.OPEN)
    colour = models.CharField(max_length=10, choices=Health.choices)
    is_new = models.BooleanField("~New", default=True)
    churn_class = models.CharField(max_length=3, choices=ChurnClass.choices, blank=True)
    region = models.CharField(max_length=20, blank=True, default="")
    salesforce_url = models.URLField(max_length=500, blank=True, default="")
    success_plan_url = models.URLField(
        "Customer Success Plan URL", max_length=500, blank=True, default=""
    )
    renewal_date = models.DateField("contract renewal date", null=True, blank=True)
    health_reason = models.TextField(
        "reason for health score", blank=True, default="", max_length=REASON_MAX_LENGTH
    )
    milestone = models.CharField(max_length=20, blank=True, default="")
    due_date = models.DateField(null=True, blank=True, help_text="Next steps.")
    opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    opened_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    # GitLab mirror.
    gitlab_iid = models.PositiveIntegerField(null=True, blank=True)
    gitlab_web_url = models.URLField(max_length=500, blank=True, default="")
    gitlab_synced_at = models.DateTimeField(null=True, blank=True)
    needs_push = models.BooleanField(default=True)

    class Meta:
        ordering = ["-opened_at"]
        indexes = [models.Index(fields=["status", "colour"])]
        constraints = [
            models.UniqueConstraint(
                fields=["account"], condition=Q(status="open"), name="one_open_triage_issue"
            ),
            models.UniqueConstraint(
                fields=["gitlab_iid"], condition=Q(gitlab_iid__isnull=False), name="one_gitlab_iid"
            ),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def needs_churn_class(self) -> bool:
        """Red without a churn class: opened automatically when the account turned red;
        the TAM must classify it (services refuse a red move or open without one)."""
        return self.colour == Health.RED and not self.churn_class

    @property
    def labels(self) -> list[str]:
        return triage_labels.issue_labels(
            colour=self.colour, new=self.is_new, churn_class=self.churn_class, region=self.region
        )

    @property
    def is_open(self) -> bool:
        return self.status == IssueStatus.OPEN


class TriageRole(models.TextChoices):
    """ "When an account is added to the issue board, assign it with a 'triage team'"."""

    ACCOUNT_OWNER = "account_owner", "Account Owner"
    TAM = "tam", "Technical Account Manager"
    TAM_LEADER = "tam_leader", "Technical Account Management Leader"
    CS_DIRECTOR = "cs_director", "Manager of Customer Experience / Director of Customer Success"
    REGIONAL_SALES_MANAGER = "regional_sales_manager", "Regional Sales Manager"
    SOLUTIONS_ARCHITECT = "solutions_architect", "Solutions Architect"
    PROFESSIONAL_SERVICES_ENGINEER = (
        "professional_services_engineer",
        "Professional Services Engineer",
    )
    EXECUTIVE_SPONSOR = "executive_sponsor", "Executive Sponsor"
    PRODUCT_MANAGER = "product_manager", "Product Manager"


class TriageTeamMember(models.Model):
    issue = models.ForeignKey(TriageIssue, on_delete=models.CASCADE, related_name="team")
    role = models.CharField(max_length=40, choices=TriageRole.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    name = models.CharField(max_length=200, blank=True, default="", help_text="If not a user.")

    class Meta:
        ordering = ["pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(user__isnull=False) | ~Q(name=""), name="team_member_user_or_name"
            ),
            models.UniqueConstraint(
                fields=["issue", "role", "user"],
                condition=Q(user__isnull=False),
                name="one_role_per_user",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_role_display()}: {self.display_name}"

    @property
    def display_name(self) -> str:
        if self.user_id and self.user:
            return self.user.get_full_name() or self.user.get_username()
        return self.name


class TriageUpdate(models.Model):
    """ "Make sure you keep your issues updated every week with the steps you have taken"."""

    issue = models.ForeignKey(TriageIssue, on_delete=models.CASCADE, related_name="updates")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField()
    body = models.TextField("what was done")
    gitlab_note_id = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.issue}: {self.body[:40]}"


class EventKind(models.TextChoices):
    OPENED = "opened", "Opened"
    MOVED = "moved", "Colour changed"
    REVIEWED = "reviewed", "Reviewed (~New removed)"
    LABELS = "labels", "Labels changed"
    CLOSED = "closed", "Closed"
    REOPENED = "reopened", "Reopened"


class EventSource(models.TextChoices):
    PORTFOLIO = "portfolio", "Portfolio"
    GITLAB = "gitlab", "GitLab board"
    AUTOMATIC = "automatic", "Automatic"


class TriageEvent(models.Model):
    """The history of an issue: opened, card moves with their reason, reviews, closes."""

    issue = models.ForeignKey(TriageIssue, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=10, choices=EventKind.choices)
    source = models.CharField(max_length=10, choices=EventSource.choices)
    from_colour = models.CharField(max_length=10, choices=Health.choices, blank=True)
    to_colour = models.CharField(max_length=10, choices=Health.choices, blank=True)
    reason = models.TextField(blank=True, default="", max_length=REASON_MAX_LENGTH)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["kind", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.issue}: {self.get_kind_display()}"


class CustomerERCall(models.Model):
    """A weekly Customer Emergency Room triage call that was held."""

    held_at = models.DateTimeField()
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    notes = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-held_at"]
        verbose_name = "Customer ER call"

    def __str__(self) -> str:
        return f"Customer ER call {self.held_at:%Y-%m-%d}"
