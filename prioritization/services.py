"""Writes of the prioritization app: rule-set versions, re-evaluations, exceptions."""

from __future__ import annotations

import bisect
import contextlib
import datetime as dt
import json
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pghistory
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from portfolio.models import Account, ActivityKind, SalesforceUser, WritebackOrigin
from portfolio.services import activity_log, salesforce_writeback_enqueue
from prioritization.facts import arr_ranks, build_facts, ids_filter, model_mapping
from prioritization.models import (
    ExceptionKind,
    ExceptionStatus,
    PriorityDecision,
    PriorityException,
    PriorityModel,
    PriorityReview,
    ReviewCause,
    RuleSet,
    RuleSetVersion,
)
from prioritization.rules import evaluate
from prioritization.selectors import (
    addressed_to_sales_management,
    can_decide_exception,
    exception_people,
)

DEFAULT_BATCH_SIZE = 5000
# Traces are plain lists of dicts of str/bool: no cycle check, compact separators.
_encode_json = json.JSONEncoder(check_circular=False, separators=(",", ":")).encode


# --- Rule sets ----------------------------------------------------------------------------


@transaction.atomic
def ruleset_save(*, ruleset: RuleSet, changed_by: User | None) -> RuleSetVersion:
    """Save a rule set as a new version, recording who changed which values."""
    previous = None
    if ruleset.pk:
        RuleSet.objects.select_for_update().filter(pk=ruleset.pk).first()
        previous = ruleset.versions.order_by("-version").first()
    values = ruleset.snapshot()
    changes = {}
    if previous is not None:
        changes = {
            k: [previous.values.get(k), v] for k, v in values.items() if previous.values.get(k) != v
        }
    ruleset.version = (previous.version if previous else 0) + 1
    ruleset.updated_by = changed_by
    ruleset.updated_at = timezone.now()
    ruleset.save()
    return RuleSetVersion.objects.create(
        ruleset=ruleset,
        version=ruleset.version,
        values=values,
        changes=changes,
        created_by=changed_by,
    )


# --- Re-evaluation ------------------------------------------------------------------------


@dataclass
class ReevaluationResult:
    review_id: int | None
    as_of: dt.date
    dry_run: bool
    evaluated: int = 0
    changed: int = 0
    p1_to_p2: int = 0
    p2_to_p1: int = 0
    skipped: int = 0
    exceptions_expired: int = 0
    seconds: float = 0.0
    # True when this call carried on a review an earlier, interrupted call had begun; the
    # counts above are then the whole review's, `changed_account_ids` only this call's.
    resumed: bool = False
    batches: int = 0
    changed_account_ids: list[int] = field(default_factory=list)
    # Seconds per phase: read (facts and current decisions), evaluate, copy, update.
    timings: dict[str, float] = field(
        default_factory=lambda: dict.fromkeys(("read", "evaluate", "copy", "update"), 0.0)
    )

    def summary(self) -> str:
        return (
            f"{'[dry run] ' if self.dry_run else ''}Re-evaluated {self.evaluated} accounts "
            f"as of {self.as_of}: {self.changed} changed (P1->P2 {self.p1_to_p2}, "
            f"P2->P1 {self.p2_to_p1}), {self.evaluated - self.changed} unchanged, "
            f"{self.skipped} without a rule set, {self.exceptions_expired} exceptions expired "
            f"in {self.seconds:.1f} s{' (resumed)' if self.resumed else ''}"
        )


_COUNTS = ("evaluated", "changed", "p1_to_p2", "p2_to_p1", "skipped", "exceptions_expired")


class _DryRun(Exception):
    pass


def _current_versions() -> tuple[dict[tuple[str, str], RuleSet], dict[int, int]]:
    rulesets = {(rs.region_id, rs.segment): rs for rs in RuleSet.objects.all()}
    versions = dict(
        RuleSetVersion.objects.filter(version=F("ruleset__version")).values_list("ruleset_id", "id")
    )
    return rulesets, versions


def _expire_exceptions(*, as_of: dt.date, quarterly: bool, scope: dict[str, Any]) -> int:
    """Approved exceptions past `expires_on` end; at a quarterly review so do those that
    run "until the next quarterly review" (no expiry date). `scope` selects the batch's
    accounts: each batch expires its own, in its own transaction, before it is evaluated."""
    qs = PriorityException.objects.filter(status=ExceptionStatus.APPROVED, **scope)
    if quarterly:
        qs = qs.filter(Q(expires_on__lt=as_of) | Q(expires_on__isnull=True))
    else:
        qs = qs.filter(expires_on__lt=as_of)
    return qs.update(status=ExceptionStatus.EXPIRED, ended_at=timezone.now())


_DECISION_COLUMNS = (
    "id",
    "account_id",
    "priority",
    "previous_priority",
    "model",
    "ruleset_version_id",
    "decided_by",
    "trace",
    "cause",
    "actor_id",
    "review_id",
    "exception_id",
    "decided_at",
)


def _decision_ids(n: int) -> list[int]:
    """n ids from the decisions' own sequence, so COPY can write them and the accounts can
    point at them in the same batch (COPY returns no ids)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
            [PriorityDecision._meta.db_table, n],
        )
        return [row[0] for row in cursor.fetchall()]


def _copy_decisions(rows: list[tuple]) -> None:
    """Decisions are written with COPY: the set-based write that keeps a 1M-account
    quarterly review close to the cost of the rows themselves (docs/performance.md)."""
    if not rows:
        return
    table = PriorityDecision._meta.db_table
    sql = f"COPY {table} ({', '.join(_DECISION_COLUMNS)}) FROM STDIN"
    # cursor.cursor is the psycopg cursor under Django's wrapper.
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        for row in rows:
            copy.write_row(row)


def _update_accounts(rows: list[tuple[int, int, int | None]]) -> None:
    """(account id, priority, new decision id or None): one UPDATE per batch, of only the
    accounts whose priority or current decision changed (the others are not touched)."""
    if not rows:
        return
    table = Account._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""UPDATE {table} a SET priority = v.priority, updated_at = now(),
                    priority_decision_id = coalesce(v.decision_id, a.priority_decision_id)
                FROM unnest(%s::bigint[], %s::smallint[], %s::bigint[])
                     AS v(id, priority, decision_id)
                WHERE a.id = v.id AND (a.priority IS DISTINCT FROM v.priority
                                       OR v.decision_id IS NOT NULL)""",  # noqa: S608  # nosec B608 # identifiers come from code, values go as query parameters
            [[r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]],
        )


def _review_open(
    *, cause: str, actor: User | None, as_of: dt.date, all_accounts: bool
) -> tuple[PriorityReview, bool]:
    """A review of every account carries on the unfinished one of the same cause and date
    (its worker died or was stopped mid-way: the Celery task is redelivered, or the
    command run again); anything else starts a new review."""
    if all_accounts:
        unfinished = (
            PriorityReview.objects.filter(
                cause=cause,
                as_of=as_of,
                all_accounts=True,
                dry_run=False,
                finished_at__isnull=True,
            )
            .order_by("-started_at")
            .first()
        )
        if unfinished is not None:
            return unfinished, True
    review = PriorityReview.objects.create(
        cause=cause, triggered_by=actor, as_of=as_of, all_accounts=all_accounts
    )
    return review, False


@dataclass
class _Run:
    """What every batch of one re-evaluation shares."""

    cause: str
    as_of: dt.date
    actor: User | None
    actor_id: int | None
    review_id: int | None
    rulesets: dict[tuple[str, str], RuleSet]
    versions: dict[int, int]
    mapping: dict[tuple[str, str], str]
    ranks: dict[int, int] | None
    dry_run: bool
    timings: dict[str, float]
    params: dict[tuple[str, str], Any] = field(init=False)

    def __post_init__(self) -> None:
        self.params = {key: rs.params() for key, rs in self.rulesets.items()}


def priorities_reevaluate(
    *,
    cause: str,
    actor: User | None = None,
    account_ids: Sequence[int] | None = None,
    as_of: dt.date | None = None,
    dry_run: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: Callable[[int], None] | None = None,
    total: Callable[[int], None] | None = None,
) -> ReevaluationResult:
    """Re-evaluate accounts (all when `account_ids` is None) set-based, one transaction per
    batch of `batch_size` accounts in id order: the batch's exceptions expire, its facts are
    built with a fixed number of queries, each account's current decision is read through
    its `priority_decision` pointer, decisions are written with COPY only where the
    priority or the deciding rule changed, only the accounts whose priority or decision
    changed are updated, their Salesforce write-back is recorded, and the review marker
    (`PriorityReview.done_through`) advances, all committed together. So no lock is held on
    more than one batch, and a review that dies mid-way is carried on by the next call
    (same cause and date) after its marker: no batch is applied twice. A dry run evaluates
    the same way and writes nothing (each batch's expiry is rolled back)."""
    started = time.monotonic()
    as_of = as_of or timezone.localdate()
    all_accounts = account_ids is None
    review, resumed = (None, False)
    if not dry_run:
        review, resumed = _review_open(
            cause=cause, actor=actor, as_of=as_of, all_accounts=all_accounts
        )
    result = ReevaluationResult(
        review_id=review.pk if review else None, as_of=as_of, dry_run=dry_run, resumed=resumed
    )
    rulesets, versions = _current_versions()
    mapping = model_mapping(rulesets.values())
    run = _Run(
        cause=cause,
        as_of=as_of,
        actor=actor,
        actor_id=actor.pk if actor is not None else None,
        review_id=result.review_id,
        rulesets=rulesets,
        versions=versions,
        mapping=mapping,
        # A whole run: one rank query, and batches are id ranges. A few accounts: id lists.
        ranks=arr_ranks(mapping) if all_accounts else None,
        dry_run=dry_run,
        timings=result.timings,
    )
    chosen = None if all_accounts else sorted(set(account_ids or ()))
    marker = review.done_through if review else None
    if total:
        total(_remaining(chosen, marker))
    # More than one batch, in transactions of its own: the next batch read meanwhile.
    several = all_accounts or len(chosen or ()) > batch_size
    ahead = None
    if several and not dry_run and not connection.in_atomic_block:
        ahead = _Prefetch(run, chosen, batch_size, all_accounts)
    try:
        _review_batches(run, review, result, chosen, marker, batch_size, ahead, progress)
    finally:
        if ahead is not None:
            ahead.close()
    if resumed and review is not None:
        # The whole review's counts, the interrupted calls' batches included.
        totals = PriorityReview.objects.values(*_COUNTS).get(pk=review.pk)
        for name in _COUNTS:
            setattr(result, name, totals[name])
    result.seconds = time.monotonic() - started
    return result


def _review_batches(
    run: _Run,
    review: PriorityReview | None,
    result: ReevaluationResult,
    chosen: list[int] | None,
    marker: int | None,
    batch_size: int,
    ahead: _Prefetch | None,
    progress: Callable[[int], None] | None,
) -> None:
    """The batches of a re-evaluation, each in its own transaction, after `marker`; with
    `ahead`, each next batch is read while this one is written."""
    last = False
    while not last:
        try:
            with transaction.atomic():
                if review is not None:
                    # Serialises two workers carrying on the same review: the second one
                    # waits here, then starts after the first one's batch.
                    marker = (
                        PriorityReview.objects.select_for_update()
                        .values_list("done_through", flat=True)
                        .get(pk=review.pk)
                    )
                batch = _next_batch(chosen, marker, batch_size)
                last = len(batch) < batch_size
                decided = ahead.take(batch) if ahead is not None else None
                if ahead is not None and batch and not last:
                    ahead.read_after(batch[-1])
                if batch:
                    counts = _reevaluate_batch(
                        run, batch, contiguous=chosen is None, decided=decided
                    )
                if run.dry_run:
                    raise _DryRun
                if review is not None:
                    _review_advance(review.pk, batch, counts if batch else None, finished=last)
        except _DryRun:
            pass
        if not batch:
            break
        marker = batch[-1]
        for name in _COUNTS:
            setattr(result, name, getattr(result, name) + counts[name])
        result.changed_account_ids.extend(counts["changed_ids"])
        result.batches += 1
        if progress:
            progress(len(batch))


def _remaining(chosen: list[int] | None, marker: int | None) -> int:
    if chosen is None:
        return Account.objects.filter(pk__gt=marker or 0).count()
    return len(chosen) - bisect.bisect_right(chosen, marker or 0)


def _next_batch(chosen: list[int] | None, marker: int | None, size: int) -> list[int]:
    """The next `size` account ids after the marker: keyset on the primary key for a
    whole run (so a resumed run needs no list of every id), a slice of the chosen ids."""
    if chosen is None:
        return list(
            Account.objects.filter(pk__gt=marker or 0)
            .order_by("pk")
            .values_list("pk", flat=True)[:size]
        )
    start = bisect.bisect_right(chosen, marker or 0)
    return chosen[start : start + size]


def _review_advance(
    review_id: int, batch: list[int], counts: dict[str, Any] | None, *, finished: bool
) -> None:
    """Advance the review marker in the batch's own transaction (one statement)."""
    changes: dict[str, Any] = {}
    if counts is not None:
        changes = {name: F(name) + counts[name] for name in _COUNTS}
        changes["done_through"] = batch[-1]
    if finished:
        changes["finished_at"] = timezone.now()
    if changes:
        PriorityReview.objects.filter(pk=review_id).update(**changes)


def _lap(timings: dict[str, float], phase: str, since: float) -> float:
    now = time.monotonic()
    timings[phase] += now - since
    return now


@dataclass
class _Decided:
    """A batch read and evaluated, nothing written yet: its counts, the decisions to write
    and the accounts whose priority changed."""

    batch: list[int]
    counts: dict[str, Any]
    decisions: list[tuple]
    updates: dict[int, int]  # account id -> new priority (priority changed)


def _batch_decide(run: _Run, batch: list[int], *, contiguous: bool) -> _Decided:
    """Read the batch's facts and current decisions and evaluate them; writes nothing, so
    it may run ahead of the batch's transaction (`_Prefetch`): the facts already leave out
    the exceptions the batch will end (`build_facts(quarterly=...)`)."""
    counts: dict[str, Any] = dict.fromkeys(_COUNTS, 0)
    counts["changed_ids"] = changed_ids = []
    clock = time.monotonic()
    # The current decision by the accounts' pointer: an index probe per account, whatever
    # the length of the history.
    current = {
        pk: (priority, decided_by)
        for pk, priority, decided_by in Account.objects.filter(
            **ids_filter("pk", batch, contiguous)
        ).values_list("pk", "priority_decision__priority", "priority_decision__decided_by")
        if decided_by is not None
    }
    facts_batch = build_facts(
        batch,
        as_of=run.as_of,
        mapping=run.mapping,
        ranks=run.ranks,
        contiguous=contiguous,
        quarterly=run.cause == ReviewCause.QUARTERLY_REVIEW,
    )
    clock = _lap(run.timings, "read", clock)
    now = timezone.now()
    decisions: list[tuple] = []
    updates: dict[int, int] = {}
    for row, facts in facts_batch:
        key = (row.region_id, row.segment)
        ruleset = run.rulesets.get(key)
        if ruleset is None:
            counts["skipped"] += 1
            continue
        counts["evaluated"] += 1
        decision = evaluate(facts, run.params[key])
        if current.get(row.id) != (decision.priority, decision.decided_by):
            decisions.append(
                (
                    row.id,
                    decision.priority,
                    row.priority,
                    decision.model,
                    run.versions.get(ruleset.pk),
                    decision.decided_by,
                    _encode_json(decision.trace_dicts()),
                    run.cause,
                    run.actor_id,
                    run.review_id,
                    row.exception_id if decision.decided_by.endswith("_exception") else None,
                    now,
                )
            )
        if row.priority != decision.priority:
            updates[row.id] = decision.priority
            counts["changed"] += 1
            changed_ids.append(row.id)
            if (row.priority, decision.priority) == (1, 2):
                counts["p1_to_p2"] += 1
            elif (row.priority, decision.priority) == (2, 1):
                counts["p2_to_p1"] += 1
    _lap(run.timings, "evaluate", clock)
    return _Decided(batch, counts, decisions, updates)


def _reevaluate_batch(
    run: _Run, batch: list[int], *, contiguous: bool, decided: _Decided | None = None
) -> dict[str, Any]:
    """One batch, inside its transaction: its exceptions end, it is decided (unless
    `decided` was read ahead) and written; returns its counts (and changed account ids)."""
    expired = _expire_exceptions(
        as_of=run.as_of,
        quarterly=run.cause == ReviewCause.QUARTERLY_REVIEW,
        scope=ids_filter("account_id", batch, contiguous),
    )
    if decided is None:
        decided = _batch_decide(run, batch, contiguous=contiguous)
    counts, decisions, updates = decided.counts, decided.decisions, dict(decided.updates)
    counts["exceptions_expired"] = expired
    if run.dry_run:
        return counts
    clock = time.monotonic()
    rows: list[tuple[int, int, int | None]] = []
    if decisions:
        ids = _decision_ids(len(decisions))
        _copy_decisions([(pk, *d) for pk, d in zip(ids, decisions, strict=True)])
        rows = [(d[0], d[1], pk) for pk, d in zip(ids, decisions, strict=True)]
        for account_id, _, _ in rows:
            updates.pop(account_id, None)
    rows += [(pk, priority, None) for pk, priority in updates.items()]
    clock = _lap(run.timings, "copy", clock)
    # The account history (pghistory AccountEvent) records who and which review.
    with pghistory.context(user=run.actor_id, priority_review=run.review_id, cause=run.cause):
        _update_accounts(rows)
    if counts["changed_ids"]:
        # CSM_Priority__c goes back to Salesforce once this batch commits.
        salesforce_writeback_enqueue(
            account_ids=counts["changed_ids"],
            fields=["priority"],
            origin=WritebackOrigin.PRIORITY_DECISION,
            detail=f"Priority review {run.review_id} ({run.cause})",
            user=run.actor,
        )
    _lap(run.timings, "update", clock)
    return counts


class _Prefetch:
    """Reads and evaluates the next batch in a thread of its own (so a database session of
    its own) while this batch is written: the Python of the one (facts, rules, traces)
    runs while PostgreSQL works on the other (COPY, UPDATE), on two cores. Used for a
    run in its own transactions (not in a caller's: that thread would not see its
    uncommitted rows). A batch read ahead is used only if it is the batch the run then
    takes (another worker carrying on the same review may have moved the marker)."""

    def __init__(self, run: _Run, chosen: list[int] | None, size: int, contiguous: bool):
        self.run, self.chosen, self.size, self.contiguous = run, chosen, size, contiguous
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="review-read")
        self._ahead: Future[_Decided | None] | None = None

    def _read(self, after: int) -> _Decided | None:
        batch = _next_batch(self.chosen, after, self.size)
        return _batch_decide(self.run, batch, contiguous=self.contiguous) if batch else None

    def take(self, batch: list[int]) -> _Decided | None:
        """The batch read ahead, if it is `batch`."""
        if self._ahead is None:
            return None
        decided, self._ahead = self._ahead.result(), None
        return decided if decided is not None and decided.batch == batch else None

    def read_after(self, marker: int) -> None:
        """Start reading the batch after `marker`."""
        self._ahead = self._thread.submit(self._read, marker)

    def close(self) -> None:
        if self._ahead is not None:
            with contextlib.suppress(Exception):  # a batch read ahead and not taken
                self._ahead.result()
        self._thread.submit(_connection_close).result()
        self._thread.shutdown(wait=True)


def _connection_close() -> None:
    """Close this thread's database session (`connection` is per thread)."""
    connection.close()


# --- Exceptions ---------------------------------------------------------------------------


@transaction.atomic
def priority_exception_request(
    *,
    account: Account,
    requested_by: User,
    requested_priority: int,
    reason: str,
    expires_on: dt.date | None = None,
    account_executive: SalesforceUser | None = None,
) -> PriorityException:
    """A TAM (or the AE, through the TAM) asks for P1 or P2 against the model. EMEA
    Enterprise accounts get a proposal ("TAM to propose a priority ... Review during
    weekly 1:1s with the TAM Manager"); both wait for the TAM's manager."""
    if requested_priority not in (1, 2):
        raise ValidationError({"requested_priority": "Only P1 or P2 can be requested."})
    if not reason.strip():
        raise ValidationError({"reason": "Say why the model is wrong for this account."})
    if expires_on is not None and expires_on <= timezone.localdate():
        raise ValidationError({"expires_on": "The expiry date must be in the future."})
    emea = RuleSet.objects.filter(
        region_id=account.region_id, segment=account.segment, model=PriorityModel.EMEA_ENTERPRISE
    ).exists()
    try:
        with transaction.atomic():
            exception = PriorityException.objects.create(
                account=account,
                kind=ExceptionKind.EMEA_PROPOSAL if emea else ExceptionKind.EXCEPTION,
                requested_priority=requested_priority,
                reason=reason.strip(),
                requested_by=requested_by,
                account_executive=account_executive,
                expires_on=expires_on,
            )
    except IntegrityError as exc:
        raise ValidationError(
            {"requested_priority": "This account already has a request waiting for the manager."}
        ) from exc
    if addressed_to_sales_management(exception):
        _document_sales_management(exception, actor=requested_by, what="requested")
    return exception


def _document_sales_management(exception: PriorityException, *, actor: User, what: str) -> None:
    """EMEA Enterprise: "Exceptions will be addressed to the regional Sales Management team
    and documented" (tam-account-engagement.md). A note on the account's timeline records
    who decides, and that the TAM's manager is informed (they see it on the account page,
    the note, and their list of requests)."""
    account = exception.account
    people = exception_people(account, sales_management=True)
    deciders = ", ".join(people["deciders"]) or (
        f"nobody yet (no sales manager covers {account.region_id}: an admin adds one)"
    )
    informed = ", ".join(people["informed"]) or "no manager (the TAM is in no team)"
    lines = [
        f"Requested P{exception.requested_priority}: {exception.reason}",
        f"Addressed to the {account.region_id} Sales Management team: {deciders}.",
        f"TAM's manager informed: {informed}.",
    ]
    if exception.decision_note:
        lines.insert(1, f"Decision note: {exception.decision_note}")
    activity_log(
        account=account,
        user=actor,
        kind=ActivityKind.NOTE,
        occurred_at=timezone.now(),
        subject=f"Priority exception {what} (P{exception.requested_priority}), "
        f"{account.region_id} Sales Management",
        body="\n".join(lines),
    )


def _decide(
    exception: PriorityException, manager: User, status: str, note: str
) -> PriorityException:
    locked = (
        PriorityException.objects.select_for_update().select_related("account").get(pk=exception.pk)
    )
    if locked.status != ExceptionStatus.PENDING:
        raise ValidationError("This request has already been decided.")
    if not can_decide_exception(manager, locked):
        if addressed_to_sales_management(locked):
            raise PermissionDenied(
                f"Only the {locked.account.region_id} Sales Management team decides EMEA "
                "Enterprise exceptions (the TAM's manager is informed), never on their own "
                "request."
            )
        raise PermissionDenied("Only the TAM's manager can decide, and never on their own request.")
    locked.status = status
    locked.decided_by = manager
    locked.decided_at = timezone.now()
    locked.decision_note = note
    locked.save(update_fields=["status", "decided_by", "decided_at", "decision_note"])
    if addressed_to_sales_management(locked):
        _document_sales_management(locked, actor=manager, what=locked.get_status_display().lower())
    return locked


@transaction.atomic
def priority_exception_approve(
    *, exception: PriorityException, manager: User, note: str = ""
) -> PriorityException:
    """The TAM's manager approves: earlier approved exceptions of the account end, and the
    account is re-evaluated at once (the exception feeds the rules)."""
    approved = _decide(exception, manager, ExceptionStatus.APPROVED, note)
    PriorityException.objects.filter(
        account_id=approved.account_id, status=ExceptionStatus.APPROVED
    ).exclude(pk=approved.pk).update(status=ExceptionStatus.EXPIRED, ended_at=timezone.now())
    priorities_reevaluate(
        cause=ReviewCause.EXCEPTION, actor=manager, account_ids=[approved.account_id]
    )
    return approved


@transaction.atomic
def priority_exception_reject(
    *, exception: PriorityException, manager: User, note: str = ""
) -> PriorityException:
    """The TAM's manager rejects: the model's priority stands."""
    return _decide(exception, manager, ExceptionStatus.REJECTED, note)
