"""Turning stored events into notifications, set-based: one `INSERT ... SELECT ... ON
CONFLICT DO NOTHING` per event kind, whatever the number of events.

Sources (each read from its cursor, `NotificationCursor`, minus `OVERLAP`):

- the account history (`portfolio.models.AccountEvent`, written by a trigger for every
  change, bulk upserts included): health turned amber or red;
- health assessments: the automatic suggestion says amber or red while the colour in
  force (the TAM's choice) is better;
- priority decisions (`PriorityDecision`, with the deciding rule and its evidence);
- priority exceptions: requested (to those who decide) and decided (to the TAM);
- triage events: an issue opened or moved;
- sync runs: failed, or a write-back waiting for an admin's confirmation;
- two states read afresh each run, their `day` fixed by the state so that one standing
  state is one notification: a renewal within 90 days without a TAM (day: 90 days
  before the renewal) and a cadence call overdue (day: the day it fell due).

Quiet by construction: the unique key (user, kind, key, day) with `key` the account makes
a storm of changes from one sync one notification per account per kind per day, and
reading an event twice (the overlap, a retried task) inserts nothing. Nobody is told of
what they did themselves.
"""

from __future__ import annotations

import datetime as dt
import zlib
from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection, transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from engagement.cadence import with_cadence
from integrations.locks import advisory_lock
from notifications import bell
from notifications.models import Kind, Notification, NotificationCursor
from portfolio.models import Account
from portfolio.roles import GROUP_ADMIN

LOCK_KEY = zlib.crc32(b"notifications.produce")
# Events are stamped when their transaction starts (PostgreSQL's now(), Python's
# timezone.now() before the write); one that commits later than the last run read can
# carry an earlier time. Re-reading this much before the cursor catches it; every long
# task's time limit is below 15 minutes (CELERY_LONG_TASK_TIME_LIMIT).
OVERLAP = dt.timedelta(minutes=15)
FIRST_RUN_LOOKBACK = dt.timedelta(days=1)
RETENTION_DAYS = 90
RENEWAL_WINDOW_DAYS = 90  # triage.selectors.RENEWAL_WINDOW_DAYS: the agenda's window
CADENCE_NEWLY_OVERDUE_DAYS = 7
PURGE_BATCH = 10_000

N = Notification._meta.db_table
COLUMNS = "user_id, kind, key, day, account_id, title, body, url, created_at"
AT_RISK = ("amber", "red")


def _path(name: str, *, numeric: bool = False) -> tuple[str, str]:
    """A URL pattern's path around its one argument, for SQL: ('/account/', '/')."""
    marker = "987654321" if numeric else "MARKER"
    before, _, after = reverse(name, args=[marker]).partition(marker)
    return before, after


def _recipients(tam: str, *, managers: bool) -> str:
    """A LATERAL list of who hears about an account with this TAM column: the TAM, and the
    managers of the teams the TAM is in ("an account in my book": a manager's book is
    their teams' books, `portfolio.selectors.accounts_for_user`)."""
    if not managers:
        return f"CROSS JOIN LATERAL (SELECT {tam} AS user_id) r"
    return (
        f"CROSS JOIN LATERAL (SELECT {tam} AS user_id UNION SELECT t.manager_id "  # nosec B608 # a column name from code
        "FROM portfolio_team_tams tt JOIN portfolio_team t ON t.id = tt.team_id "
        f"WHERE tt.user_id = {tam}) r"
    )


def _context_user(alias: str = "ctx") -> str:
    """The user id a pghistory context names (set by the request middleware), or NULL."""
    return (
        f"(CASE WHEN jsonb_typeof({alias}.metadata->'user') = 'number' "
        f"THEN ({alias}.metadata->>'user')::bigint END)"
    )


@dataclass
class Window:
    since: dt.datetime
    until: dt.datetime
    tz: str = field(default_factory=lambda: settings.TIME_ZONE)


def _insert(select_sql: str, params: list) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {N} ({COLUMNS}) {select_sql} "  # nosec B608 # identifiers from code, values as parameters
            "ON CONFLICT (user_id, kind, key, day) DO NOTHING",
            params,
        )
        return max(cursor.rowcount, 0)


def health_at_risk(w: Window) -> int:
    """ "An account in my book turned amber or red" (issue 15): the colour in force got
    worse to amber or red (green/yellow/unscored -> amber or red, amber -> red), read
    from the account history; an account created at-risk is not a change."""
    before, after = _path("ui:account")
    sql = f"""
        SELECT r.user_id, %s, 'account:' || a.id, (e.pgh_created_at AT TIME ZONE %s)::date,
               a.id, LEFT(a.name || ' turned ' || initcap(e.health), 255),
               'Health ' || initcap(COALESCE(NULLIF(prev.health, ''), 'unscored')) || ' → '
                 || initcap(e.health)
                 || CASE WHEN ctx.metadata ? 'sync_run'
                    THEN ' (Salesforce sync run ' || (ctx.metadata->>'sync_run') || ')'
                    ELSE '' END,
               %s || a.salesforce_id || %s, e.pgh_created_at
        FROM portfolio_accountevent e
        JOIN portfolio_account a ON a.id = e.pgh_obj_id
        LEFT JOIN pghistory_context ctx ON ctx.id = e.pgh_context_id
        CROSS JOIN LATERAL (SELECT p.health FROM portfolio_accountevent p
             WHERE p.pgh_obj_id = e.pgh_obj_id AND p.pgh_id < e.pgh_id
             ORDER BY p.pgh_id DESC LIMIT 1) prev
        {_recipients("a.tam_id", managers=True)}
        WHERE e.pgh_created_at > %s AND e.pgh_created_at <= %s
          AND a.tam_id IS NOT NULL AND r.user_id IS NOT NULL
          AND (e.health = 'red' AND prev.health IS DISTINCT FROM 'red'
               OR e.health = 'amber' AND COALESCE(prev.health, '') NOT IN ('amber', 'red'))
          AND r.user_id IS DISTINCT FROM {_context_user()}
        ORDER BY e.pgh_created_at, e.pgh_id
    """  # nosec B608 # identifiers from code, values as parameters
    return _insert(sql, [Kind.HEALTH_AT_RISK, w.tz, before, after, w.since, w.until])


def health_suggested(w: Window) -> int:
    """The suggestion side of "turned amber or red (suggested or chosen)": a new automatic
    suggestion of amber or red that is worse than the colour in force (the TAM's
    choice stands, DESIGN.md: "both are kept"; the TAM is told the rules disagree).
    Same kind as `health_at_risk`, so both on one day are one notification."""
    before, after = _path("triage:account")
    sql = f"""
        SELECT r.user_id, %s, 'account:' || a.id, (h.created_at AT TIME ZONE %s)::date, a.id,
               LEFT(a.name || ': health suggested ' || initcap(h.suggested_colour), 255),
               'Suggested ' || initcap(h.suggested_colour) || ', in force '
                 || initcap(COALESCE(NULLIF(h.colour, ''), 'unscored'))
                 || CASE WHEN h.chosen_colour <> '' THEN ' (chosen by the TAM)' ELSE '' END,
               %s || a.salesforce_id || %s, h.created_at
        FROM triage_healthassessment h
        JOIN portfolio_account a ON a.id = h.account_id
        LEFT JOIN LATERAL (SELECT p.suggested_colour FROM triage_healthassessment p
             WHERE p.account_id = h.account_id AND p.created_at < h.created_at
             ORDER BY p.created_at DESC LIMIT 1) prev ON true
        {_recipients("a.tam_id", managers=False)}
        WHERE h.created_at > %s AND h.created_at <= %s AND a.tam_id IS NOT NULL
          AND h.suggested_colour IN ('amber', 'red')
          AND prev.suggested_colour IS DISTINCT FROM h.suggested_colour
          AND (h.suggested_colour = 'red' AND h.colour <> 'red'
               OR h.suggested_colour = 'amber' AND h.colour NOT IN ('amber', 'red'))
        ORDER BY h.created_at, h.id
    """  # nosec B608 # identifiers from code, values as parameters
    return _insert(sql, [Kind.HEALTH_AT_RISK, w.tz, before, after, w.since, w.until])


def priority_changed(w: Window) -> int:
    """ "A priority changed and why": the decision's deciding rule and its evidence (the
    trace entry of `decided_by`), linked to the account's priority page."""
    before, after = _path("prioritization:account")
    sql = f"""
        SELECT r.user_id, %s, 'account:' || a.id, (d.decided_at AT TIME ZONE %s)::date, a.id,
               LEFT(a.name || ': P' || d.previous_priority || ' → P' || d.priority, 255),
               LEFT(COALESCE((SELECT concat_ws(' ', t->>'question', t->>'evidence')
                     FROM jsonb_array_elements(d.trace) t WHERE t->>'rule' = d.decided_by
                     LIMIT 1), 'Decided by ' || d.decided_by), 1000),
               %s || a.salesforce_id || %s, d.decided_at
        FROM prioritization_prioritydecision d
        JOIN portfolio_account a ON a.id = d.account_id
        {_recipients("a.tam_id", managers=False)}
        WHERE d.decided_at > %s AND d.decided_at <= %s AND a.tam_id IS NOT NULL
          AND d.previous_priority IS NOT NULL AND d.previous_priority <> d.priority
          AND r.user_id IS DISTINCT FROM d.actor_id
        ORDER BY d.decided_at, d.id
    """  # nosec B608 # identifiers from code, values as parameters
    return _insert(sql, [Kind.PRIORITY_CHANGED, w.tz, before, after, w.since, w.until])


def exception_pending(w: Window) -> int:
    """ "An exception awaiting my decision": still pending, to those who may decide it
    (`prioritization.selectors.can_decide_exception`): the managers of the TAM's teams,
    or for an EMEA Enterprise proposal the sales managers covering the region; never
    the requester."""
    pending_url = reverse("prioritization:pending")
    sql = """
        SELECT r.user_id, %s, 'exception:' || x.id, (x.created_at AT TIME ZONE %s)::date,
               a.id, LEFT(a.name || ': P' || x.requested_priority || ' requested', 255),
               LEFT(x.reason, 1000), %s, x.created_at
        FROM prioritization_priorityexception x
        JOIN portfolio_account a ON a.id = x.account_id
        CROSS JOIN LATERAL (
            SELECT t.manager_id AS user_id FROM portfolio_team_tams tt
              JOIN portfolio_team t ON t.id = tt.team_id
             WHERE x.kind <> 'emea_proposal' AND tt.user_id = a.tam_id
            UNION
            SELECT sm.user_id FROM portfolio_salesmanager sm
              JOIN portfolio_salesmanager_regions smr ON smr.salesmanager_id = sm.id
             WHERE x.kind = 'emea_proposal' AND smr.region_id = a.region_id) r
        WHERE x.created_at > %s AND x.created_at <= %s AND x.status = 'pending'
          AND r.user_id <> x.requested_by_id
        ORDER BY x.created_at, x.id
    """
    return _insert(sql, [Kind.EXCEPTION_PENDING, w.tz, pending_url, w.since, w.until])


def exception_decided(w: Window) -> int:
    """ "An exception ... decided": to the requester and the account's TAM."""
    before, after = _path("prioritization:account")
    sql = """
        SELECT r.user_id, %s, 'exception:' || x.id, (x.decided_at AT TIME ZONE %s)::date,
               a.id, LEFT(a.name || ': P' || x.requested_priority || ' exception '
                 || x.status, 255),
               LEFT(COALESCE(NULLIF(x.decision_note, ''), x.reason), 1000),
               %s || a.salesforce_id || %s, x.decided_at
        FROM prioritization_priorityexception x
        JOIN portfolio_account a ON a.id = x.account_id
        CROSS JOIN LATERAL (SELECT x.requested_by_id AS user_id
                            UNION SELECT a.tam_id WHERE a.tam_id IS NOT NULL) r
        WHERE x.decided_at > %s AND x.decided_at <= %s
          AND x.status IN ('approved', 'rejected')
          AND r.user_id IS DISTINCT FROM x.decided_by_id
        ORDER BY x.decided_at, x.id
    """
    return _insert(sql, [Kind.EXCEPTION_DECIDED, w.tz, before, after, w.since, w.until])


def triage_issue(w: Window) -> int:
    """ "A triage issue opened or moved for my account" (TriageEvent opened / moved)."""
    before, after = _path("triage:issue", numeric=True)
    sql = f"""
        SELECT r.user_id, %s, 'account:' || a.id, (ev.created_at AT TIME ZONE %s)::date,
               a.id,
               LEFT(a.name || CASE ev.kind WHEN 'opened'
                      THEN ': triage issue opened (' || initcap(ev.to_colour) || ')'
                      ELSE ': triage issue moved ' || initcap(ev.from_colour) || ' → '
                           || initcap(ev.to_colour) END, 255),
               LEFT(ev.reason, 1000), %s || i.id || %s, ev.created_at
        FROM triage_triageevent ev
        JOIN triage_triageissue i ON i.id = ev.issue_id
        JOIN portfolio_account a ON a.id = i.account_id
        {_recipients("a.tam_id", managers=True)}
        WHERE ev.created_at > %s AND ev.created_at <= %s AND ev.kind IN ('opened', 'moved')
          AND a.tam_id IS NOT NULL AND r.user_id IS NOT NULL
          AND r.user_id IS DISTINCT FROM ev.actor_id
        ORDER BY ev.created_at, ev.id
    """  # nosec B608 # identifiers from code, values as parameters
    return _insert(sql, [Kind.TRIAGE_ISSUE, w.tz, before, after, w.since, w.until])


def sync_problem(w: Window) -> int:
    """ "A sync failed or needs confirmation (admins)": a failed run of any source, and a
    Salesforce write-back the mass-change brake holds (`portfolio.writeback`), linked to
    where an admin acts."""
    runs_url = reverse("portfolio:sync_runs")
    writeback_url = reverse("writeback:page")
    user_model = get_user_model()
    users, groups = user_model._meta.db_table, Group._meta.db_table
    memberships = user_model.groups.through._meta.db_table
    sql = f"""
        SELECT u.id, %s, 'sync_run:' || s.id,
               (COALESCE(s.finished_at, s.started_at) AT TIME ZONE %s)::date, NULL,
               LEFT(initcap(replace(s.source, '_', ' ')) || ' run ' || s.id
                 || CASE s.status WHEN 'failed' THEN ' failed'
                    ELSE ' needs confirmation' END, 255),
               LEFT(CASE s.status WHEN 'failed' THEN s.error
                    ELSE 'It would change more accounts than the brake allows: confirm or '
                         'cancel it.' END, 1000),
               CASE s.status WHEN 'failed' THEN %s ELSE %s END,
               COALESCE(s.finished_at, s.started_at)
        FROM integrations_syncrun s
        CROSS JOIN {users} u
        WHERE COALESCE(s.finished_at, s.started_at) > %s
          AND COALESCE(s.finished_at, s.started_at) <= %s
          AND s.status IN ('failed', 'needs_confirmation')
          AND u.is_active AND (u.is_superuser OR EXISTS (SELECT 1 FROM {memberships} ug
              JOIN {groups} g ON g.id = ug.group_id WHERE ug.user_id = u.id
              AND g.name = %s))
        ORDER BY s.id
    """  # nosec B608 # identifiers from code, values as parameters
    params = [Kind.SYNC_PROBLEM, w.tz, runs_url, writeback_url, w.since, w.until, GROUP_ADMIN]
    return _insert(sql, params)


def renewal_no_tam(w: Window) -> int:
    """ "Review the accounts that do not have a Technical Account Manager that are due for
    renewal within the next 90 days" (tam-account-triage.md, five-minute check): to the
    managers of the teams of the account's region. One per account and renewal date
    (`day` is 90 days before the renewal), however many runs see it."""
    before, after = _path("ui:account")
    today = timezone.localdate(w.until)
    sql = """
        SELECT t.manager_id, %s, 'account:' || a.id, a.renewal_date - %s, a.id,
               LEFT(a.name || ': renews ' || to_char(a.renewal_date, 'YYYY-MM-DD')
                 || ' without a TAM', 255),
               'Region ' || a.region_id || ', ARR ' || to_char(a.arr, 'FM999,999,999,990'),
               %s || a.salesforce_id || %s, %s
        FROM portfolio_account a
        JOIN portfolio_team t ON t.region_id = a.region_id
        WHERE a.tam_id IS NULL AND a.renewal_date BETWEEN %s AND %s
        ORDER BY a.renewal_date, a.id
    """
    params = [Kind.RENEWAL_NO_TAM, RENEWAL_WINDOW_DAYS, before, after, w.until, today]
    params.append(today + dt.timedelta(days=RENEWAL_WINDOW_DAYS))
    return _insert(sql, params)


def cadence_overdue(w: Window) -> int:
    """ "A cadence call overdue": the cadence of `engagement.cadence.with_cadence` (the one
    definition), to the TAM, on the day it fell due; only calls that fell due in the
    last week, so a first run does not list a whole book's old backlog (the dashboard
    shows that)."""
    before, after = _path("ui:account")
    accounts = (
        with_cadence(Account.objects.filter(tam__isnull=False, priority__in=[1, 2]), now=w.until)
        .filter(cadence_overdue=True)
        .order_by()
        .values(
            "id",
            "tam_id",
            "name",
            "salesforce_id",
            "cadence_days",
            "last_cadence_at",
            since=F("created_at"),
        )
    )
    inner, inner_params = accounts.query.sql_with_params()
    today = timezone.localdate(w.until)
    # Due: the last call held plus the cadence; never called, the day the account came
    # in (a fixed day either way, so a standing overdue call is one notification).
    due = (
        "COALESCE((q.last_cadence_at AT TIME ZONE %s)::date + q.cadence_days,"
        " (q.since AT TIME ZONE %s)::date)"
    )
    sql = f"""
        SELECT q.tam_id, %s, 'account:' || q.id, {due}, q.id,
               LEFT(q.name || ': cadence call overdue', 255),
               'A call every ' || q.cadence_days || ' days; last held '
                 || COALESCE(to_char(q.last_cadence_at AT TIME ZONE %s, 'YYYY-MM-DD'), 'never'),
               %s || q.salesforce_id || %s, %s
        FROM ({inner}) q
        WHERE {due} > %s
        ORDER BY q.id
    """  # nosec B608 # the inner query is the ORM's, values as parameters
    params = [Kind.CADENCE_OVERDUE, w.tz, w.tz, w.tz, before, after, w.until, *inner_params]
    params += [w.tz, w.tz, today - dt.timedelta(days=CADENCE_NEWLY_OVERDUE_DAYS)]
    return _insert(sql, params)


# Event sources read from a cursor, and states read afresh (their cursor only records
# when they were last read).
SOURCES = {
    "account_history": health_at_risk,
    "health_assessments": health_suggested,
    "priority_decisions": priority_changed,
    "exceptions_requested": exception_pending,
    "exceptions_decided": exception_decided,
    "triage_events": triage_issue,
    "sync_runs": sync_problem,
    "renewals_without_tam": renewal_no_tam,
    "cadence": cadence_overdue,
}


@dataclass
class ProduceResult:
    produced: dict[str, int] = field(default_factory=dict)
    purged: int = 0
    skipped: bool = False
    first_id: int = 0
    last_id: int = 0

    @property
    def total(self) -> int:
        return sum(self.produced.values())


def notifications_produce(*, now: dt.datetime | None = None) -> ProduceResult:
    """Read every source from its cursor and insert what is new; one run at a time (an
    advisory lock: a second one returns at once, `skipped`). Each source and its cursor
    commit together, so a killed run resumes from the last committed source."""
    now = now or timezone.now()
    result = ProduceResult()
    with advisory_lock(LOCK_KEY) as held:
        if not held:
            result.skipped = True
            return result
        result.first_id = _max_id()
        for source, produce in SOURCES.items():
            with transaction.atomic():
                cursor, _ = NotificationCursor.objects.select_for_update().get_or_create(
                    source=source, defaults={"position": now - FIRST_RUN_LOOKBACK}
                )
                window = Window(since=cursor.position - OVERLAP, until=now)
                if window.since >= window.until:  # the clock went back: read nothing new
                    continue
                result.produced[source] = produce(window)
                cursor.position = max(cursor.position, now)
                cursor.produced = result.produced[source]
                cursor.save(update_fields=["position", "produced", "updated_at"])
        result.last_id = _max_id()
        if result.last_id > result.first_id:  # the recipients' bells count again
            bell.forget(
                Notification.objects.filter(id__gt=result.first_id)
                .values_list("user_id", flat=True)
                .distinct()
            )
        result.purged = notifications_purge(now=now)
    return result


def _max_id() -> int:
    last = Notification.objects.order_by("-id").values_list("id", flat=True).first()
    return last or 0


def notifications_purge(*, now: dt.datetime) -> int:
    """Delete notifications older than 90 days ("last 90 days"), in bounded batches."""
    cutoff = now - dt.timedelta(days=RETENTION_DAYS)
    total = 0
    while True:
        ids = list(
            Notification.objects.filter(created_at__lt=cutoff).values_list("id", flat=True)[
                :PURGE_BATCH
            ]
        )
        if not ids:
            return total
        total += Notification.objects.filter(id__in=ids).delete()[0]
