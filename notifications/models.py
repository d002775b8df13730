"""Notifications (issue 15, point 1): what happened that a person should act on, for that
person, with a link to the place to act.

Rows are produced from the events Portfolio already stores (account history, priority
decisions, exceptions, triage events, sync runs) by `notifications.producer`, set-based
and idempotent: the unique key (user, kind, key, day) makes a storm of changes from one
sync one notification per account per kind per day, and a rerun insert nothing.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class Kind(models.TextChoices):
    HEALTH_AT_RISK = "health_at_risk", "An account turned amber or red"
    PRIORITY_CHANGED = "priority_changed", "A priority changed"
    EXCEPTION_PENDING = "exception_pending", "An exception awaits my decision"
    EXCEPTION_DECIDED = "exception_decided", "An exception was decided"
    TRIAGE_ISSUE = "triage_issue", "A triage issue was opened or moved"
    RENEWAL_NO_TAM = "renewal_no_tam", "A renewal within 90 days has no TAM"
    CADENCE_OVERDUE = "cadence_overdue", "A cadence call is overdue"
    SYNC_PROBLEM = "sync_problem", "A sync failed or needs confirmation"


class Channel(models.TextChoices):
    IN_APP = "in_app", "In the app"
    EMAIL = "email", "Daily e-mail digest"
    CHAT = "chat", "Team chat (Slack / Teams)"


class Notification(models.Model):
    """One thing for one user. `key` names what it is about (`account:<id>`,
    `sync_run:<id>`); `day` is the local date of the event, so re-reading an event is
    a no-op; `url` is a path of this site (the place to act)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="notifications",
        db_index=False,  # the (user, -created_at) index serves the foreign key
    )
    kind = models.CharField(max_length=20, choices=Kind.choices)
    key = models.CharField(max_length=64)
    day = models.DateField()
    account = models.ForeignKey(
        "portfolio.Account",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
    )
    title = models.CharField(max_length=255)
    body = models.TextField(blank=True, default="")
    url = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)
    digest = models.ForeignKey(
        "NotificationDigest",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="notifications",
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "kind", "key", "day"], name="notification_once_a_day"
            )
        ]
        indexes = [
            models.Index(fields=["user", "-created_at", "-id"], name="notification_by_user"),
            # The bell: unread rows of one user, read from this small index.
            models.Index(
                fields=["user", "kind"],
                name="notification_unread",
                condition=models.Q(read_at__isnull=True),
            ),
            models.Index(fields=["created_at"], name="notification_created"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} {self.kind}: {self.title}"


class NotificationPreference(models.Model):
    """A user's choice for one kind on one channel; without a row, the role's default
    (`notifications.preferences.DEFAULTS`) holds."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    kind = models.CharField(max_length=20, choices=Kind.choices)
    channel = models.CharField(max_length=10, choices=Channel.choices)
    enabled = models.BooleanField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "kind", "channel"], name="one_preference_per_kind_channel"
            )
        ]

    def __str__(self) -> str:
        return f"{self.user_id} {self.kind}/{self.channel}: {self.enabled}"


class DigestStatus(models.TextChoices):
    SENDING = "sending", "Being sent"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"


class NotificationDigest(models.Model):
    """The daily e-mail of one user: at most one row, so one mail, per (user, day)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    day = models.DateField()
    status = models.CharField(
        max_length=10, choices=DigestStatus.choices, default=DigestStatus.SENDING
    )
    notification_count = models.PositiveIntegerField(default=0)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-day"]
        constraints = [
            models.UniqueConstraint(fields=["user", "day"], name="one_digest_per_user_per_day")
        ]

    def __str__(self) -> str:
        return f"Digest of {self.user_id} for {self.day} ({self.status})"


class ChatService(models.TextChoices):
    SLACK = "slack", "Slack"
    TEAMS = "teams", "Microsoft Teams"


class TeamWebhook(models.Model):
    """A team's incoming webhook (Slack or Microsoft Teams). The URL is its secret: kept
    encrypted (`notifications.secrets`), never shown again in full, never logged."""

    team = models.OneToOneField(
        "portfolio.Team", on_delete=models.CASCADE, related_name="chat_webhook"
    )
    service = models.CharField(max_length=10, choices=ChatService.choices)
    url_encrypted = models.TextField(editable=False)
    # The host and the last characters, to recognise it ("hooks.slack.com …a1b2").
    url_hint = models.CharField(max_length=120, editable=False, default="")
    enabled = models.BooleanField(default=True)
    last_sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True, default="")
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.team} → {self.get_service_display()} ({self.url_hint})"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Waiting"
    SENT = "sent", "Posted"
    FAILED = "failed", "Given up"


class WebhookDelivery(models.Model):
    """One post to a team's channel; unique per (team, kind, key, day), so a TAM and their
    manager both caring about one red account make one post, and a rerun none."""

    team = models.ForeignKey("portfolio.Team", on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    key = models.CharField(max_length=64)
    day = models.DateField()
    title = models.CharField(max_length=255)
    body = models.TextField(blank=True, default="")
    url = models.CharField(max_length=500, blank=True, default="")
    status = models.CharField(
        max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_error = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "webhook deliveries"
        constraints = [
            models.UniqueConstraint(
                fields=["team", "kind", "key", "day"], name="webhook_delivery_once_a_day"
            )
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="webhook_delivery_due",
                condition=models.Q(status="pending"),
            )
        ]

    def __str__(self) -> str:
        return f"{self.team_id} {self.kind}: {self.title} ({self.status})"


class NotificationCursor(models.Model):
    """How far the producer read one source (a timestamp); each run re-reads a short
    overlap before it (`producer.OVERLAP`), which the unique key makes harmless."""

    source = models.CharField(max_length=40, unique=True)
    position = models.DateTimeField()
    # For sources read by id (the notifications themselves, fanned out to chat).
    last_id = models.BigIntegerField(default=0)
    produced = models.PositiveIntegerField(default=0, help_text="Rows the last run inserted.")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.source} @ {self.position}"
