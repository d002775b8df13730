"""Writes of the prioritization app: rule-set versions, re-evaluations, exceptions."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pghistory
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import F
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
def ruleset_save(*, ruleset: RuleSet, changed_by: AbstractBaseUser | None) -> RuleSetVersion:
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
    ruleset.updated_by = changed_by  # type: ignore[assignment]
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
    changed_account_ids: list[int] = field(default_factory=list)
    # Seconds per phase: read (facts and latest decisions), evaluate, copy, update.
    timings: dict[str, float] = field(
        default_factory=lambda: dict.fromkeys(("read", "evaluate", "copy", "update"), 0.0)
    )

    def summary(self) -> str:
        return (
            f"{'[dry run] ' if self.dry_run else ''}Re-evaluated {self.evaluated} accounts "
            f"as of {self.as_of}: {self.changed} changed (P1->P2 {self.p1_to_p2}, "
            f"P2->P1 {self.p2_to_p1}), {self.evaluated - self.changed} unchanged, "
            f"{self.skipped} without a rule set, {self.exceptions_expired} exceptions expired "
            f"in {self.seconds:.1f} s"
        )


class _DryRun(Exception):
    pass


def _current_versions() -> tuple[dict[tuple[str, str], RuleSet], dict[int, int]]:
    rulesets = {(rs.region_id, rs.segment): rs for rs in RuleSet.objects.all()}
    versions = dict(
        RuleSetVersion.objects.filter(version=F("ruleset__version")).values_list("ruleset_id", "id")
    )
    return rulesets, versions


def _expire_exceptions(
    *, as_of: dt.date, quarterly: bool, account_ids: Sequence[int] | None
) -> int:
    """Approved exceptions past `expires_on` end; at a quarterly review so do those that
    run "until the next quarterly review" (no expiry date)."""
    qs = PriorityException.objects.filter(status=ExceptionStatus.APPROVED)
    if account_ids is not None:
        qs = qs.filter(account_id__in=account_ids)
    ended = qs.filter(expires_on__lt=as_of)
    count = ended.update(status=ExceptionStatus.EXPIRED, ended_at=timezone.now())
    if quarterly:
        count += qs.filter(expires_on__isnull=True).update(
            status=ExceptionStatus.EXPIRED, ended_at=timezone.now()
        )
    return count


_DECISION_COLUMNS = (
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


def _copy_decisions(rows: list[tuple]) -> None:
    """Decisions are written with COPY: the set-based write that keeps a 100k-account
    quarterly review close to the cost of the rows themselves (docs/performance.md)."""
    if not rows:
        return
    table = PriorityDecision._meta.db_table
    sql = f"COPY {table} ({', '.join(_DECISION_COLUMNS)}) FROM STDIN"
    # cursor.cursor is the psycopg cursor under Django's wrapper.
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        for row in rows:
            copy.write_row(row)


def _update_account_priorities(pairs: list[tuple[int, int]]) -> None:
    if not pairs:
        return
    table = Account._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""UPDATE {table} a SET priority = v.priority, updated_at = now()
                FROM unnest(%s::bigint[], %s::smallint[]) AS v(id, priority)
                WHERE a.id = v.id AND a.priority IS DISTINCT FROM v.priority""",  # noqa: S608  # nosec B608 # identifiers come from code, values go as query parameters
            [[p[0] for p in pairs], [p[1] for p in pairs]],
        )


def priorities_reevaluate(
    *,
    cause: str,
    actor: AbstractBaseUser | None = None,
    account_ids: Sequence[int] | None = None,
    as_of: dt.date | None = None,
    dry_run: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: Callable[[int], None] | None = None,
    total: Callable[[int], None] | None = None,
) -> ReevaluationResult:
    """Re-evaluate accounts (all when `account_ids` is None) set-based: facts built per
    batch with a fixed number of queries, decisions written with COPY only where the
    priority or the deciding rule changed, `Account.priority` updated in one statement per
    batch, Salesforce write-back enqueued on commit. A dry run does everything inside a
    transaction and rolls it back."""
    as_of = as_of or timezone.localdate()
    started = time.monotonic()
    result = ReevaluationResult(review_id=None, as_of=as_of, dry_run=dry_run)
    try:
        with transaction.atomic():
            _reevaluate(
                result,
                cause=cause,
                actor=actor,
                account_ids=account_ids,
                batch_size=batch_size,
                progress=progress,
                total=total,
            )
            result.seconds = time.monotonic() - started
            if dry_run:
                raise _DryRun
            PriorityReview.objects.filter(pk=result.review_id).update(
                finished_at=timezone.now(),
                evaluated=result.evaluated,
                changed=result.changed,
                p1_to_p2=result.p1_to_p2,
                p2_to_p1=result.p2_to_p1,
                skipped=result.skipped,
                exceptions_expired=result.exceptions_expired,
            )
            # CSM_Priority__c goes back to Salesforce once this commits.
            salesforce_writeback_enqueue(
                account_ids=result.changed_account_ids,
                fields=["priority"],
                origin=WritebackOrigin.PRIORITY_DECISION,
                detail=f"Priority review {result.review_id} ({cause})",
                user=actor,
            )
    except _DryRun:
        result.review_id = None
    result.seconds = time.monotonic() - started
    return result


def _lap(timings: dict[str, float], phase: str, since: float) -> float:
    now = time.monotonic()
    timings[phase] += now - since
    return now


def _reevaluate(
    result: ReevaluationResult,
    *,
    cause: str,
    actor: AbstractBaseUser | None,
    account_ids: Sequence[int] | None,
    batch_size: int,
    progress: Callable[[int], None] | None,
    total: Callable[[int], None] | None,
) -> None:
    as_of = result.as_of
    review = PriorityReview.objects.create(
        cause=cause, triggered_by=actor, as_of=as_of, dry_run=result.dry_run
    )
    result.review_id = review.pk
    result.exceptions_expired = _expire_exceptions(
        as_of=as_of, quarterly=cause == ReviewCause.QUARTERLY_REVIEW, account_ids=account_ids
    )
    rulesets, versions = _current_versions()
    mapping = model_mapping(rulesets.values())
    params = {key: rs.params() for key, rs in rulesets.items()}
    ids = (
        list(Account.objects.order_by("pk").values_list("pk", flat=True))
        if account_ids is None
        else sorted(set(account_ids))
    )
    if total:
        total(len(ids))
    # A whole run: one rank query, and batches are id ranges. A few accounts: id lists.
    contiguous = account_ids is None
    ranks = arr_ranks(mapping) if contiguous else None
    now = timezone.now()
    actor_id = actor.pk if actor is not None else None
    timings = result.timings
    for start in range(0, len(ids), batch_size):
        batch = ids[start : start + batch_size]
        clock = time.monotonic()
        latest = {
            account_id: (priority, decided_by)
            for account_id, priority, decided_by in PriorityDecision.objects.filter(
                **ids_filter("account_id", batch, contiguous)
            )
            .order_by("account_id", "-decided_at", "-id")
            .distinct("account_id")
            .values_list("account_id", "priority", "decided_by")
        }
        decisions: list[tuple] = []
        priorities: list[tuple[int, int]] = []
        facts_batch = build_facts(
            batch, as_of=as_of, mapping=mapping, ranks=ranks, contiguous=contiguous
        )
        clock = _lap(timings, "read", clock)
        for row, facts in facts_batch:
            ruleset = rulesets.get((row.region_id, row.segment))
            if ruleset is None:
                result.skipped += 1
                continue
            result.evaluated += 1
            decision = evaluate(facts, params[(row.region_id, row.segment)])
            if latest.get(row.id) != (decision.priority, decision.decided_by):
                decisions.append(
                    (
                        row.id,
                        decision.priority,
                        row.priority,
                        decision.model,
                        versions.get(ruleset.pk),
                        decision.decided_by,
                        _encode_json(decision.trace_dicts()),
                        cause,
                        actor_id,
                        review.pk,
                        row.exception_id if decision.decided_by.endswith("_exception") else None,
                        now,
                    )
                )
            if row.priority != decision.priority:
                priorities.append((row.id, decision.priority))
                result.changed += 1
                result.changed_account_ids.append(row.id)
                if (row.priority, decision.priority) == (1, 2):
                    result.p1_to_p2 += 1
                elif (row.priority, decision.priority) == (2, 1):
                    result.p2_to_p1 += 1
        clock = _lap(timings, "evaluate", clock)
        _copy_decisions(decisions)
        clock = _lap(timings, "copy", clock)
        # The account history (pghistory AccountEvent) records who and which review.
        with pghistory.context(user=actor_id, priority_review=review.pk, cause=cause):
            _update_account_priorities(priorities)
        _lap(timings, "update", clock)
        if progress:
            progress(len(batch))


# --- Exceptions ---------------------------------------------------------------------------


@transaction.atomic
def priority_exception_request(
    *,
    account: Account,
    requested_by: AbstractBaseUser,
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


def _document_sales_management(
    exception: PriorityException, *, actor: AbstractBaseUser, what: str
) -> None:
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
    exception: PriorityException, manager: AbstractBaseUser, status: str, note: str
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
    locked.decided_by = manager  # type: ignore[assignment]
    locked.decided_at = timezone.now()
    locked.decision_note = note
    locked.save(update_fields=["status", "decided_by", "decided_at", "decision_note"])
    if addressed_to_sales_management(locked):
        _document_sales_management(locked, actor=manager, what=locked.get_status_display().lower())
    return locked


@transaction.atomic
def priority_exception_approve(
    *, exception: PriorityException, manager: AbstractBaseUser, note: str = ""
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
    *, exception: PriorityException, manager: AbstractBaseUser, note: str = ""
) -> PriorityException:
    """The TAM's manager rejects: the model's priority stands."""
    return _decide(exception, manager, ExceptionStatus.REJECTED, note)
