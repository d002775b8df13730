"""Engagement lifecycle: engagements and their checklists, collaboration projects, success
plans, customer open issues, disengagements and E-Group call briefs.

Cadence calls, EBRs, the "Welcome to GitLab" call and sent emails are portfolio Activity
rows (the account timeline), not models of this app.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from portfolio.models import Account


class EngagementKind(models.TextChoices):
    NEW_CUSTOMER = "new_customer", "New customer"
    UPGRADE = "upgrade", "Customer upgrade"


class EngagementStage(models.TextChoices):
    PRE_SALES = "pre_sales", "Pre-sales"
    POST_SALES = "post_sales", "Post-sales"


class ProjectTemplate(models.TextChoices):
    ENTERPRISE = "enterprise", "Enterprise"
    COMMERCIAL = "commercial", "Commercial"


class Engagement(models.Model):
    """A new-customer or upgrade engagement of one account, with its checklist."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="engagements")
    kind = models.CharField(max_length=20, choices=EngagementKind.choices)
    stage = models.CharField(
        max_length=20, choices=EngagementStage.choices, default=EngagementStage.PRE_SALES
    )
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    started_at = models.DateTimeField(default=timezone.now)
    welcome_call_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            # One open engagement per account at a time.
            models.UniqueConstraint(
                fields=["account"],
                condition=models.Q(ended_at__isnull=True),
                name="engagement_one_open_per_account",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} engagement of {self.account_id}"


class EngagementStep(models.Model):
    """One step of an engagement's checklist: who should do it, who did it and when."""

    engagement = models.ForeignKey(Engagement, on_delete=models.CASCADE, related_name="steps")
    key = models.CharField(max_length=40)
    position = models.PositiveSmallIntegerField()
    title = models.CharField(max_length=255)
    who = models.CharField("who does it", max_length=100)
    done_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    done_at = models.DateTimeField(null=True, blank=True)
    # A step the TAM decides (the Commercial upgrade's customer project) may be completed
    # as "not needed", with the why in `note`.
    may_be_not_needed = models.BooleanField(default=False)
    not_needed = models.BooleanField(default=False)
    note = models.CharField(max_length=255, blank=True, default="")

    class Meta:
        ordering = ["position"]
        constraints = [
            models.UniqueConstraint(fields=["engagement", "key"], name="engagement_step_key")
        ]

    def __str__(self) -> str:
        return self.title


class ProjectStatus(models.TextChoices):
    REQUESTED = "requested", "Creation requested"
    CREATED = "created", "Created"
    FAILED = "failed", "Creation failed"
    TRANSFER_REQUESTED = "transfer_requested", "Move to account management requested"
    TRANSFER_FAILED = "transfer_failed", "Move to account management failed"
    TRANSFERRED = "transferred", "In account management (post-sales)"


class CollaborationProject(models.Model):
    """The customer's collaboration project in GitLab (one per account).

    `path` (the name's slug and a suffix of the Salesforce id) is fixed when the project
    is requested; with the account's marker in the project's description it is the
    idempotency key: every retry looks the project up by path and by marker in the
    pre-sales and account-management groups before creating it.

    `conflict_with` is the other account's project when GitLab showed the two tangled (a
    project at this account's path carrying the other's marker): both rows carry the
    error in `last_error` until the failed one is provisioned."""

    account = models.OneToOneField(
        Account, on_delete=models.CASCADE, related_name="collaboration_project"
    )
    template = models.CharField(max_length=20, choices=ProjectTemplate.choices)
    path = models.CharField(max_length=100)
    status = models.CharField(
        max_length=20, choices=ProjectStatus.choices, default=ProjectStatus.REQUESTED
    )
    gitlab_id = models.PositiveIntegerField(null=True, blank=True)
    path_with_namespace = models.CharField(max_length=255, blank=True, default="")
    web_url = models.URLField(blank=True, default="")
    welcome_issue_iid = models.PositiveIntegerField(null=True, blank=True)
    welcome_issue_url = models.URLField(blank=True, default="")
    last_error = models.TextField(blank=True, default="")
    conflict_with = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    requested_at = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(null=True, blank=True)
    transferred_at = models.DateTimeField(null=True, blank=True)
    issues_synced_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.path_with_namespace or self.path

    @property
    def in_post_sales(self) -> bool:
        return self.status == ProjectStatus.TRANSFERRED

    @property
    def busy(self) -> bool:
        return self.status in (ProjectStatus.REQUESTED, ProjectStatus.TRANSFER_REQUESTED)


class ObjectiveStatus(models.TextChoices):
    GREEN = "green", "Green (on track)"
    YELLOW = "yellow", "Yellow (needs attention)"
    RED = "red", "Red (off track)"


class SuccessObjective(models.Model):
    """An objective of the account's success plan."""

    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, related_name="success_objectives"
    )
    title = models.CharField(max_length=255)
    status = models.CharField(
        max_length=10, choices=ObjectiveStatus.choices, default=ObjectiveStatus.YELLOW
    )
    due_date = models.DateField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["account", "title"], name="objective_title_per_account")
        ]

    def __str__(self) -> str:
        return self.title


class SuccessTask(models.Model):
    objective = models.ForeignKey(SuccessObjective, on_delete=models.CASCADE, related_name="tasks")
    title = models.CharField(max_length=255)
    due_date = models.DateField(null=True, blank=True)
    done_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.title


class CustomerIssue(models.Model):
    """An open question the customer raised in the collaboration project (GitLab mirror)."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="customer_issues")
    iid = models.PositiveIntegerField()
    title = models.CharField(max_length=255)
    web_url = models.URLField(blank=True, default="")
    author = models.CharField(max_length=255, blank=True, default="")
    opened_at = models.DateTimeField()
    last_customer_at = models.DateTimeField(null=True, blank=True)
    last_answer_at = models.DateTimeField(null=True, blank=True)
    awaiting_answer = models.BooleanField(default=False)
    waiting_since = models.DateTimeField()
    notes_count = models.PositiveIntegerField(default=0)
    synced_at = models.DateTimeField()

    class Meta:
        ordering = ["-awaiting_answer", "waiting_since"]
        constraints = [
            models.UniqueConstraint(fields=["account", "iid"], name="customer_issue_account_iid")
        ]

    def __str__(self) -> str:
        return self.title


class DisengagementReason(models.TextChoices):
    DOWNGRADE = "downgrade", "Customer downgraded, below the TAM alignment threshold"
    CHURN = "churn", "Customer churned"
    STRATEGIC_ENDED = "strategic_ended", "Strategic engagement below the threshold ended"
    OTHER = "other", "Other"


class Disengagement(models.Model):
    """A recorded disengagement: why, what was reviewed with the customer, the follow-up."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="disengagements")
    engagement = models.ForeignKey(
        Engagement, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    reason = models.CharField(max_length=20, choices=DisengagementReason.choices)
    reason_detail = models.TextField(blank=True, default="")
    met_with_account_executive = models.BooleanField(
        "conversation held face-to-face with the SAL/AE", default=False
    )
    option_support = models.BooleanField(
        "troubleshooting, errors, outages and basic how-to go to Support", default=False
    )
    option_written_howto = models.BooleanField(
        "complex how-to and workflow advice sent in writing to the SAL/AE", default=False
    )
    option_features_lost = models.TextField(
        "features lost on downgrade (feature comparison)", blank=True, default=""
    )
    option_self_serve = models.BooleanField(
        "online self-serve resources (docs, blog, YouTube, forum)", default=False
    )
    follow_up_summary = models.TextField()
    previous_tam = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    recorded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-recorded_at", "-id"]

    def __str__(self) -> str:
        return f"Disengagement of {self.account_id}: {self.get_reason_display()}"


class EGroupBrief(models.Model):
    """The TAM's part of an E-Group call preparation brief (the five W's and outcomes);
    the account facts are read live when the brief is shown or exported."""

    account = models.OneToOneField(Account, on_delete=models.CASCADE, related_name="egroup_brief")
    egroup_member = models.CharField("E-Group member", max_length=200, blank=True, default="")
    who = models.TextField(blank=True, default="")
    what = models.TextField(blank=True, default="")
    where = models.CharField(max_length=255, blank=True, default="")
    when = models.DateTimeField(null=True, blank=True)
    why = models.TextField(blank=True, default="")
    gitlab_outcome = models.TextField(
        "what GitLab wants out of the meeting", blank=True, default=""
    )
    customer_outcome = models.TextField(
        "what the customer wants out of the meeting", blank=True, default=""
    )
    asks = models.TextField(
        "what the E-Group member should do, say and ask", blank=True, default=""
    )
    agenda = models.TextField(blank=True, default="")
    topics = models.TextField("topics the customer may bring up", blank=True, default="")
    links = models.TextField(blank=True, default="")
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"E-Group brief for {self.account_id}"


class EmailTemplateOrigin(models.TextChoices):
    HANDBOOK = "handbook", "Handbook"
    PORTFOLIO = "portfolio", "Portfolio"


class EmailTemplate(models.Model):
    """An email template of the panel's picker, in its latest version (admin-edited).

    "The templates provided below can be used for certain outreach efforts to customers
    to drive engagement" (csm-account-engagement.md, Email Templates). Only the initial
    customer engagement is the handbook's text; the others are Portfolio's own, and
    `origin` says which is which. Subject and body are Django template text filled with
    `engagement.emails.merge_fields`. Every save goes through
    `engagement.services.emails.email_template_save`, which keeps each version
    (`EmailTemplateVersion`)."""

    key = models.SlugField(max_length=40, unique=True)
    position = models.PositiveSmallIntegerField(default=0, help_text="Order in the picker.")
    name = models.CharField(max_length=120)
    origin = models.CharField(
        max_length=10,
        choices=EmailTemplateOrigin.choices,
        help_text="Handbook: the handbook's own text (quote where it is in Source). "
        "Portfolio: text written for Portfolio (Source: the handbook line it serves).",
    )
    source = models.CharField(max_length=255, blank=True, default="")
    subject = models.CharField(max_length=255)
    body = models.TextField(
        help_text="Merge fields: {{ customer }}, {{ contact_name }}, {{ tam_name }}, "
        "{{ account_executive }}, {{ account_executive_email }}, {{ project_url }}, "
        "{{ renewal_date }}, {{ plan }}, {{ downgrade_or_churn }}, {{ features_lost }}."
    )
    version = models.PositiveIntegerField(default=1)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["position", "key"]

    def __str__(self) -> str:
        return self.name


class EmailTemplateVersion(models.Model):
    """One saved version of an email template: what it said, who saved it and when."""

    template = models.ForeignKey(EmailTemplate, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    name = models.CharField(max_length=120)
    origin = models.CharField(max_length=10, choices=EmailTemplateOrigin.choices)
    source = models.CharField(max_length=255, blank=True, default="")
    subject = models.CharField(max_length=255)
    body = models.TextField()
    saved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    saved_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["template", "-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["template", "version"], name="email_template_version_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.template_id} v{self.version}"


class OutboundEmailStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"


class OutboundEmail(models.Model):
    """An e-mail to a customer, queued by the TAM and sent by a task (issue 13: never over
    SMTP inside the request). Logged on the timeline once sent."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="outbound_emails")
    # The sender; the per-user hourly limit counts on (user, created_at).
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    to = models.JSONField(default=list)
    cc = models.JSONField(default=list, blank=True)
    reply_to = models.JSONField(default=list, blank=True)
    subject = models.CharField(max_length=255)
    body = models.TextField()
    status = models.CharField(
        max_length=10, choices=OutboundEmailStatus.choices, default=OutboundEmailStatus.QUEUED
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "-created_at"], name="outbound_email_by_user")]

    def __str__(self) -> str:
        return f"{self.subject} -> {', '.join(self.to)} ({self.status})"
