"""Records of every conversation with the outside: sync runs, cursors, rejected records."""

from __future__ import annotations

from django.db import models


class Source(models.TextChoices):
    SALESFORCE = "salesforce", "Salesforce"
    GITLAB = "gitlab", "GitLab"
    # Portfolio -> Salesforce: one run per write-back sweep (portfolio/writeback.py).
    SALESFORCE_WRITEBACK = "salesforce_writeback", "Salesforce write-back"
    # Product usage imports (the usage app): the API, `import_usage`, the admin upload.
    USAGE = "usage", "Product usage"


class SyncStatus(models.TextChoices):
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    COMPLETED_WITH_ERRORS = "completed_with_errors", "Completed with errors"
    FAILED = "failed", "Failed"
    # Another run of the source held its lock: nothing was done, the row says so.
    SKIPPED = "skipped", "Skipped"
    # A write-back sweep that would change too much stopped before writing anything and
    # waits for an admin's confirmation (the mass-change brake).
    NEEDS_CONFIRMATION = "needs_confirmation", "Needs confirmation"


class SyncRun(models.Model):
    """One row per sync run (public contract, DESIGN.md)."""

    source = models.CharField(max_length=20, choices=Source.choices)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=30, choices=SyncStatus.choices, default=SyncStatus.RUNNING)
    created_count = models.PositiveIntegerField(default=0)
    updated_count = models.PositiveIntegerField(default=0)
    unchanged_count = models.PositiveIntegerField(default=0)
    quarantined_count = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True, default="")
    trigger = models.CharField(
        max_length=20, blank=True, default="", help_text="command, schedule, manual, ..."
    )
    # Per-object counts, API usage, retries, links resolved: shown on the sync-runs page.
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["source", "-started_at"])]

    def __str__(self) -> str:
        return f"{self.get_source_display()} run {self.pk} ({self.status})"

    @property
    def duration(self):
        if self.finished_at is None:
            return None
        return self.finished_at - self.started_at

    @property
    def bulk_load_notes(self) -> list[tuple[str, bool]]:
        """What bulk first loads (integrations/bulkload.py) did to the schema, for the
        runs page: (text, whether an admin must act)."""
        notes = []
        for name, done in (self.details.get("restored_after_stopped_run") or {}).items():
            count = len(done.get("rebuilt", []))
            notes.append(
                (f"{name}: rebuilt {count} indexes and keys a stopped load set aside", False)
            )
        for name, counts in (self.details.get("objects") or {}).items():
            bulk = counts.get("bulk_load") if isinstance(counts, dict) else None
            if not bulk:
                continue
            count, seconds = len(bulk.get("rebuilt", [])), bulk.get("seconds", 0.0)
            notes.append(
                (
                    f"{name}: loaded in bulk, {count} indexes and keys rebuilt in {seconds:.1f} s",
                    False,
                )
            )
            notes += [
                (f"{name}: foreign key left NOT VALID: {p}", True) for p in bulk.get("problems", [])
            ]
            if bulk.get("error"):
                notes.append((f"{name}: rebuilding failed: {bulk['error']}", True))
        return notes


class SyncCursor(models.Model):
    """How far a source's incremental sync got, per object (e.g. Account SystemModstamp).

    Advanced in the same transaction as the rows it covers, so a killed worker resumes
    exactly where the last committed batch ended.
    """

    source = models.CharField(max_length=20, choices=Source.choices)
    object_name = models.CharField(max_length=80)
    position = models.DateTimeField(null=True, blank=True)
    # Indexes and foreign keys a bulk first load set aside (integrations/bulkload.py),
    # kept here until they are rebuilt so that a killed load cannot lose them.
    deferred_ddl = models.JSONField(default=list, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["source", "object_name"], name="one_cursor_per_object")
        ]

    def __str__(self) -> str:
        return f"{self.source}:{self.object_name} @ {self.position}"


class QuarantinedRecord(models.Model):
    """A record that could not be stored: its raw payload and a reason a person can act on."""

    source = models.CharField(max_length=20, choices=Source.choices)
    object_name = models.CharField(max_length=80, default="")
    external_id = models.CharField(max_length=64, blank=True, default="")
    payload = models.JSONField()
    reason = models.TextField()
    sync_run = models.ForeignKey(
        SyncRun, on_delete=models.SET_NULL, null=True, blank=True, related_name="quarantined"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by_run = models.ForeignKey(
        SyncRun, on_delete=models.SET_NULL, null=True, blank=True, related_name="resolved"
    )

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["source", "object_name", "external_id"])]

    def __str__(self) -> str:
        return f"{self.source} {self.object_name} {self.external_id}: {self.reason[:60]}"


class WorkerHeartbeat(models.Model):
    """Written by the `integrations.heartbeat` task, so /healthz can tell whether a worker
    is consuming the queue (a broker that answers is not enough)."""

    hostname = models.CharField(max_length=255, unique=True)
    seen_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.hostname} @ {self.seen_at}"
