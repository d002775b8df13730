"""The TAM's book of business: regions, teams, accounts and what hangs off them.

Account rows come from Salesforce (sync) plus the facts only the TAM knows (hours of
stage adoption this quarter, organisational change, ...), which the priority rules read.
"""

from __future__ import annotations

from decimal import Decimal

import pghistory
import pgtrigger
from django.conf import settings
from django.db import models
from django.db.models.functions import Lower


class Segment(models.TextChoices):
    ENTERPRISE = "enterprise", "Enterprise"
    COMMERCIAL = "commercial", "Commercial"
    PUBLIC_SECTOR = "public_sector", "Public Sector"


class Health(models.TextChoices):
    GREEN = "green", "Green"
    YELLOW = "yellow", "Yellow"
    AMBER = "amber", "Amber"
    RED = "red", "Red"


class Priority(models.IntegerChoices):
    P1 = 1, "P1"
    P2 = 2, "P2"
    P3 = 3, "P3"
    P4 = 4, "P4"


class SuccessPlan(models.TextChoices):
    """State of the customer success plan; feeds the Commercial rules."""

    NONE = "none", "None (no objectives captured)"
    OBJECTIVES = "objectives", "Objectives captured"
    FULL = "full", "Full plan"


class Region(models.Model):
    """A sales region; its code is the Salesforce `Region__c` value and the triage label."""

    code = models.CharField(max_length=20, primary_key=True)
    name = models.CharField(max_length=100)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code


class Team(models.Model):
    """A manager and the TAMs reporting to them."""

    name = models.CharField(max_length=100, unique=True)
    manager = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="managed_teams"
    )
    region = models.ForeignKey(Region, on_delete=models.SET_NULL, null=True, blank=True)
    tams = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="teams", blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class SalesManager(models.Model):
    """A member of a regional Sales Management team and the regions they cover.

    "Exceptions will be addressed to the regional Sales Management team and documented"
    (tam-account-engagement.md, EMEA Enterprise): a sales manager decides the priority
    exceptions of EMEA Enterprise accounts in the regions they cover (the user is also in
    the "Sales Management" group, `portfolio.roles.GROUP_SALES_MANAGEMENT`)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="sales_manager"
    )
    regions = models.ManyToManyField(Region, related_name="sales_managers")

    class Meta:
        ordering = ["user__username"]

    def __str__(self) -> str:
        return self.user.get_full_name() or self.user.get_username()


class SalesforceUser(models.Model):
    """A Salesforce user (account executive or TAM), matched to a Portfolio user by email."""

    salesforce_id = models.CharField(max_length=18, unique=True)
    name = models.CharField(max_length=200)
    email = models.EmailField(blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="salesforce_users",
    )
    salesforce_modstamp = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(Lower("email"), name="sfuser_email_lower")]

    def __str__(self) -> str:
        return self.name


# "History of changes to ARR, TAM, health and priority (who or which sync run, when, old,
# new). Bulk upserts must be recorded too" (issue 3): a PostgreSQL trigger writes one
# AccountEvent row per insert and per update that changes one of these fields, whatever
# wrote it (ORM save, bulk_create(update_conflicts=True), raw INSERT ... ON CONFLICT).
# `pghistory.context(user=..., sync_run=...)` attaches who or which run did it.
@pghistory.track(
    pghistory.InsertEvent(),
    pghistory.UpdateEvent(condition=pghistory.AnyChange("arr", "tam", "health", "priority")),
    fields=["arr", "tam", "health", "priority"],
    model_name="AccountEvent",
    obj_field=pghistory.ObjForeignKey(related_name="history"),
    # Statement-level: one trigger call per INSERT/UPDATE statement reading the transition
    # tables, so a 2,000-row upsert writes its events in one set-based INSERT.
    level=pgtrigger.Statement,
)
class Account(models.Model):
    """A customer account. Contract fields: salesforce_id, name, arr, region, segment,
    tam, renewal_date, health, priority (DESIGN.md).

    Indexes are chosen for a 100k-row upsert every 15 minutes: salesforce_id is unique
    through a constraint (no extra `varchar_pattern_ops` index), and the (tam, priority) and
    (region, segment) indexes serve the tam and region foreign keys.
    """

    salesforce_id = models.CharField(max_length=18)
    name = models.CharField(max_length=255)
    parent = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="children"
    )
    parent_salesforce_id = models.CharField(max_length=18, blank=True, default="")
    owner = models.ForeignKey(
        SalesforceUser,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="owned_accounts",
        help_text="Account executive (Salesforce OwnerId).",
    )
    arr = models.DecimalField("ARR (USD)", max_digits=14, decimal_places=2, default=Decimal(0))
    region = models.ForeignKey(
        Region, on_delete=models.PROTECT, related_name="accounts", db_index=False
    )
    segment = models.CharField(max_length=20, choices=Segment.choices)
    # The rule set of the account's region and segment: no column, a join on both (unique
    # in RuleSet), so a page reads it with the account (`select_related("ruleset")`); None
    # when the region and segment have none.
    ruleset = models.ForeignObject(
        "prioritization.RuleSet",
        on_delete=models.DO_NOTHING,
        from_fields=["region", "segment"],
        to_fields=["region", "segment"],
        null=True,
        editable=False,
        related_name="+",
    )
    tam = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="accounts",
        db_index=False,
    )
    renewal_date = models.DateField(null=True, blank=True)
    customer_since = models.DateField(null=True, blank=True)
    plan = models.CharField("GitLab plan", max_length=50, blank=True, default="")
    digital_only = models.BooleanField(default=False)
    lam = models.PositiveIntegerField("LAM (seats)", null=True, blank=True)
    licensed_seats = models.PositiveIntegerField(null=True, blank=True)
    health = models.CharField(max_length=10, choices=Health.choices, blank=True, default="")
    priority = models.PositiveSmallIntegerField(choices=Priority.choices, null=True, blank=True)
    # The account's current (latest) stored priority decision, kept by the one writer of
    # decisions (`prioritization.services.priorities_reevaluate`), so a review reads it by
    # primary key instead of DISTINCT ON over the whole history. No constraint and no
    # index: the foreign-key check would lock each decision row (FOR KEY SHARE) on every
    # account update of a 1M-account review, and an index would be one more to update per
    # account (and tempted the planner into scanning it during a first review). A pointer
    # left dangling (a decision deleted in admin) reads as "no current decision", and the
    # next review stores one and mends it.
    priority_decision = models.ForeignKey(
        "prioritization.PriorityDecision",
        on_delete=models.DO_NOTHING,
        null=True,
        blank=True,
        related_name="+",
        db_constraint=False,
        db_index=False,
        editable=False,
    )

    # Lifecycle and adoption, kept by the TAM (or the engagement app).
    onboarding_started = models.DateField(null=True, blank=True)
    onboarding_completed = models.DateField(null=True, blank=True)
    stages_adopted = models.PositiveSmallIntegerField(default=0)
    success_plan = models.CharField(
        max_length=12, choices=SuccessPlan.choices, default=SuccessPlan.NONE
    )
    collaboration_project_url = models.URLField(blank=True, default="")

    # TAM-entered signals for this quarter, read by the priority rules.
    stage_adoption_hours_per_week = models.DecimalField(
        max_digits=5, decimal_places=1, default=Decimal(0)
    )
    infrastructure_change_hours_per_week = models.DecimalField(
        max_digits=5, decimal_places=1, default=Decimal(0)
    )
    churn_risk = models.BooleanField("at risk of contraction or churn", default=False)
    critical_project = models.BooleanField(default=False)
    key_logo = models.BooleanField(default=False)
    channel_engagement = models.BooleanField("channel initiative", default=False)
    nps = models.SmallIntegerField("NPS", null=True, blank=True)
    org_change = models.BooleanField("organisational change", default=False)
    weekly_engagement_requested = models.BooleanField(default=False)
    expansion_play = models.BooleanField(default=False)
    tam_handover = models.BooleanField("TAM handover", default=False)

    # What Salesforce last had for the written-back fields (pulled by the sync or pushed by
    # the write-back). A difference from tam/health/priority is a pending write-back; an
    # equal value means Portfolio and Salesforce agree, so the next pull may take
    # Salesforce's new value.
    owner_salesforce_id = models.CharField(max_length=18, blank=True, default="")
    salesforce_tam_id = models.CharField(
        "Technical_Account_Manager__c in Salesforce", max_length=18, blank=True, default=""
    )
    salesforce_health = models.CharField(
        "Health_Score__c in Salesforce", max_length=10, blank=True, default=""
    )
    salesforce_priority = models.PositiveSmallIntegerField(
        "CSM_Priority__c in Salesforce", null=True, blank=True
    )

    salesforce_modstamp = models.DateTimeField(null=True, blank=True)
    synced_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        indexes = [
            models.Index(fields=["tam", "priority"]),
            models.Index(fields=["region", "segment"]),
            models.Index(fields=["renewal_date"]),
            models.Index(fields=["-arr"]),
            # Django admin's change list order (name, then id for a stable page).
            models.Index(fields=["name", "id"], name="account_name_id"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["salesforce_id"], name="account_salesforce_id_unique"),
            models.CheckConstraint(condition=models.Q(arr__gte=0), name="account_arr_not_negative"),
        ]

    def __str__(self) -> str:
        return self.name

    @staticmethod
    def name_search(term: str, *, salesforce_id: bool) -> models.Q:
        """The name search over the whole book (`portfolio.selectors.name_search`): the
        names are in `AccountName`. Django admin's lists call it (config.admin_lists),
        which import no app."""
        from portfolio.selectors import name_search

        return name_search(term, salesforce_id=salesforce_id)


class AccountName(models.Model):
    """An account's name, in a narrow table of its own: what the name search reads.

    The trigram index that serves `icontains` on names (`account_name_trgm`) is on this
    table, not on the account's: an account update that cannot stay on its heap page (a
    new priority, which is in the `(tam, priority)` index; a batch of the sync or the
    write-back, whose rows fill the page's free space) adds entries to every index of the
    account table, and the name's twenty-odd trigrams made up about 45% of such an update
    (docs/performance.md, "Quarterly re-evaluation at 1M").

    Kept by the database (migration 0019): a statement-level trigger inserts the names of
    new accounts, a row-level trigger on `UPDATE OF name` follows a rename (an update that
    does not set the name costs nothing here); deleted with its account. Read it through
    `portfolio.selectors.name_search`."""

    account = models.OneToOneField(
        Account, on_delete=models.CASCADE, primary_key=True, related_name="search_name"
    )
    name = models.CharField(max_length=255)

    def __str__(self) -> str:
        return self.name


class WritebackField(models.TextChoices):
    """The fields Portfolio writes back to Salesforce (DESIGN.md: "Written back:
    Technical_Account_Manager__c, Health_Score__c, CSM_Priority__c")."""

    TAM = "tam", "TAM"
    HEALTH = "health", "Health"
    PRIORITY = "priority", "Priority"


class WritebackOrigin(models.TextChoices):
    """Where a change Portfolio wants to write came from."""

    TAM_ASSIGNMENT = "tam_assignment", "TAM assigned in Portfolio"
    HEALTH_ASSESSMENT = "health_assessment", "Health colour set or assessed"
    PRIORITY_DECISION = "priority_decision", "Priority decided"
    ADMIN_EDIT = "admin_edit", "Edited in Django admin"
    CONFLICT_RESOLVED = "conflict_resolved", "Admin chose Portfolio's value in a conflict"
    BEFORE_UPGRADE = "before_upgrade", "Waiting when the per-field write-back was installed"


class WritebackStatus(models.TextChoices):
    """A row's state. A row written (`sent`) or found already in Salesforce (`in_sync`) is
    deleted: nothing is left to do, and its run keeps the counts; the two values name
    those outcomes in the runs and the code."""

    PENDING = "pending", "Waiting to be written"
    HELD = "held", "Held for an admin's confirmation (a mass change)"
    SENT = "sent", "Written to Salesforce"
    IN_SYNC = "in_sync", "Salesforce already had it"
    CONFLICT = "conflict", "Conflict: Salesforce changed it meanwhile"
    REFUSED = "refused", "Refused by Salesforce"
    DISCARDED = "discarded", "Not written (Salesforce's value kept)"

    @classmethod
    def open(cls) -> list[str]:
        """The states a person may have to act on."""
        return [cls.PENDING, cls.HELD, cls.CONFLICT, cls.REFUSED]


class SalesforceWriteback(models.Model):
    """One field of one account that Portfolio decided and wants in Salesforce.

    Keeps, per field: the value last read from Salesforce when Portfolio decided
    (`base_value`), the value Portfolio wants (`value`) and where the change came from
    (`origin`, `origin_detail`, `changed_by`). Values are in Portfolio's terms, as in the
    account's `salesforce_*` columns: the Salesforce User Id of the TAM, the health colour
    (`green`), the priority as text (`1`); "" is none. A row exists only because Portfolio
    changed something: the sync never writes one, so an unmatched Salesforce user is never
    a reason to write.
    """

    # The (account, field) constraint's index serves the foreign key.
    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, related_name="writebacks", db_index=False
    )
    field = models.CharField(max_length=10, choices=WritebackField.choices)
    base_value = models.CharField(
        "Salesforce's value when Portfolio decided", max_length=18, blank=True, default=""
    )
    value = models.CharField("Portfolio's value", max_length=18, blank=True, default="")
    origin = models.CharField(max_length=20, choices=WritebackOrigin.choices)
    origin_detail = models.CharField(max_length=255, blank=True, default="")
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    status = models.CharField(
        max_length=12, choices=WritebackStatus.choices, default=WritebackStatus.PENDING
    )
    # In a conflict: what Salesforce had when the write-back looked.
    salesforce_value = models.CharField(max_length=18, blank=True, default="")
    error = models.TextField(blank=True, default="")
    attempts = models.PositiveSmallIntegerField(default=0)
    # The write-back run that last handled it; while that run waits for confirmation (the
    # mass-change brake) the row is held by it and other sweeps leave it alone.
    run = models.ForeignKey(
        "integrations.SyncRun",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="writebacks",
    )
    # An admin confirmed this write (a mass change the brake held, or Portfolio's value in
    # a conflict): the brake does not stop it again. `confirmed_by` is empty when it was
    # confirmed on the command line.
    confirmed = models.BooleanField(default=False)
    confirmed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "field"], name="one_writeback_per_field")
        ]
        indexes = [
            # The sweep reads pending rows in account order; pages list the open ones.
            # (account, field): the chunks' keyset order, read from the index and stopped
            # at the chunk's end (a sort would read every pending row for each chunk).
            models.Index(
                fields=["account", "field"],
                name="writeback_pending",
                condition=models.Q(status="pending"),
            ),
            models.Index(
                fields=["status", "-decided_at"],
                name="writeback_open",
                condition=models.Q(status__in=["pending", "held", "conflict", "refused"]),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.account_id} {self.field}: {self.base_value!r} -> {self.value!r}"


class Opportunity(models.Model):
    salesforce_id = models.CharField(max_length=18)
    # The (account, is_closed, close_date) index serves the foreign key.
    account = models.ForeignKey(
        Account,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="opportunities",
        db_index=False,
    )
    account_salesforce_id = models.CharField(max_length=18)
    name = models.CharField(max_length=255)
    type = models.CharField(max_length=80, blank=True, default="")
    stage_name = models.CharField(max_length=80, blank=True, default="")
    close_date = models.DateField(null=True, blank=True)
    amount = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    is_closed = models.BooleanField(default=False)
    is_won = models.BooleanField(default=False)
    salesforce_modstamp = models.DateTimeField(null=True, blank=True)
    synced_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "opportunities"
        indexes = [models.Index(fields=["account", "is_closed", "close_date"])]
        constraints = [
            models.UniqueConstraint(
                fields=["salesforce_id"], name="opportunity_salesforce_id_unique"
            )
        ]

    def __str__(self) -> str:
        return self.name


class Persona(models.TextChoices):
    DEVELOPMENT_LEAD = "development_lead", "Development Lead"
    SECURITY_LEAD = "security_lead", "Software Security Lead"


class KeyPersona(models.Model):
    """One of the handbook's key personas (csm-account-engagement.md, Customer Personas),
    a row per `Persona` value (seeded by a migration). Its primary key is the persona's
    key, so `contact.personas.add("security_lead")` and
    `Contact.objects.filter(personas="development_lead")` read as they should."""

    key = models.CharField(max_length=20, primary_key=True, choices=Persona.choices)

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return self.get_key_display()


class Contact(models.Model):
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="contacts")
    salesforce_id = models.CharField(max_length=18, unique=True, null=True, blank=True)
    name = models.CharField(max_length=200)
    email = models.EmailField(blank=True, default="")
    title = models.CharField(max_length=200, blank=True, default="")
    # "edit the `GitLab Role` field and select the persona(s) that apply to them"
    # (csm-account-engagement.md): a contact may hold both key personas, or none.
    personas = models.ManyToManyField(KeyPersona, blank=True, related_name="contacts")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ActivityKind(models.TextChoices):
    CALL = "call", "Call"
    EMAIL = "email", "Email"
    MEETING = "meeting", "Meeting"
    CADENCE_CALL = "cadence_call", "Cadence call"
    EBR = "ebr", "EBR"
    WORKSHOP = "workshop", "Workshop"
    NOTE = "note", "Note"


class CallOutcome(models.TextChoices):
    """What happened to a scheduled cadence call or EBR (`engagement.rules.CallOutcome`)."""

    HELD = "held", "Held"
    LATE = "late", "Held, the customer came late"
    MISSED = "missed", "Missed: the customer did not show up"
    RESCHEDULED = "rescheduled", "Rescheduled: the customer said they could not make it"


class Activity(models.Model):
    """The account timeline (the handbook's activity types)."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="activities")
    kind = models.CharField(max_length=20, choices=ActivityKind.choices)
    occurred_at = models.DateTimeField()
    subject = models.CharField(max_length=255)
    body = models.TextField(blank=True, default="")
    # Cadence calls and EBRs: "" = not recorded (logged before outcomes were, or not a
    # call); cadence attendance is read only from recorded outcomes.
    outcome = models.CharField(max_length=12, choices=CallOutcome.choices, blank=True, default="")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "activities"
        ordering = ["-occurred_at"]
        indexes = [models.Index(fields=["account", "kind", "-occurred_at"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.subject}"


class ApiTokenScope(models.TextChoices):
    READ = "read", "Read only (look up and evaluate; stores nothing)"
    WRITE = "write", "Read and write"


class ApiToken(models.Model):
    """A personal API token (issue 13): kept only as a SHA-256 digest, shown once when
    issued; named, scoped, expiring, revocable by its owner on the "API tokens" page.
    The token reads `pf_<prefix>_<secret>`; the prefix finds the row, the digest proves it."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12, unique=True)
    digest = models.CharField(max_length=64)
    scope = models.CharField(
        max_length=5, choices=ApiTokenScope.choices, default=ApiTokenScope.READ
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} (pf_{self.prefix}_…)"
