"""What a user keeps of their own workspace: the state of their inbox items (done,
snoozed) and their saved views of the accounts table."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class InboxItemState(models.Model):
    """A user's "done" or "snoozed until" on one inbox item, by the item's key.

    Inbox items are computed, not stored (`workspace.inbox`): the key names the kind, the
    object and the occurrence (`cadence:<account id>:<due date>`), so an item marked done
    comes back when a new occurrence falls due (the next cadence call), and a snoozed one
    comes back on the snooze date."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="inbox_states"
    )
    key = models.CharField(max_length=80)
    done_at = models.DateTimeField(null=True, blank=True)
    snoozed_until = models.DateField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="inbox_state_user_key"),
            models.CheckConstraint(
                condition=Q(done_at__isnull=False) | Q(snoozed_until__isnull=False),
                name="inbox_state_done_or_snoozed",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} {self.key}"


class SavedView(models.Model):
    """A named state of the accounts table (filters, sort, columns): the table's query
    string, so opening the view is opening that URL. A shared view is listed to everyone
    (each sees it over their own book: the scoping is the viewer's, never the owner's)."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="saved_views"
    )
    name = models.CharField(max_length=80)
    querystring = models.CharField(max_length=1000, blank=True, default="")
    shared = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "name"], name="saved_view_name_per_owner")
        ]
        indexes = [
            models.Index(fields=["shared"], condition=Q(shared=True), name="saved_view_shared")
        ]

    def __str__(self) -> str:
        return self.name
