"""Health endpoint and sync-run pages."""

from __future__ import annotations

import redis
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers

from integrations import selectors
from integrations.models import Source, SyncRun, WorkerHeartbeat
from portfolio import writeback
from portfolio.htmx import HtmxHttpRequest
from portfolio.roles import ADMINS, MANAGERS, role_of, role_required
from portfolio.selectors import accounts_for_user
from portfolio.services import salesforce_sync_enqueue


def _database_ok() -> tuple[bool, str]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True, "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means "down"
        return False, type(exc).__name__


def _broker_ok() -> tuple[bool, str]:
    try:
        client = redis.Redis.from_url(
            settings.CELERY_BROKER_URL, socket_timeout=2, socket_connect_timeout=2
        )
        client.ping()
        return True, "ok"
    except Exception as exc:  # noqa: BLE001
        return False, type(exc).__name__


@login_not_required
@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """200 when the database and the broker answer, 503 naming what is down. Indexes and
    foreign keys set aside by a bulk load are listed while missing (status "degraded":
    the web works, slower; the periodic check rebuilds them)."""
    db_ok, db_detail = _database_ok()
    broker_ok, broker_detail = _broker_ok()
    last_runs: dict[str, dict | None] = {}
    if db_ok:
        for source in Source.values:
            run = SyncRun.objects.filter(source=source).order_by("-started_at").first()
            last_runs[source] = (
                None
                if run is None
                else {
                    "id": run.pk,
                    "status": run.status,
                    "started_at": run.started_at.isoformat(),
                    "finished_at": run.finished_at.isoformat() if run.finished_at else None,
                }
            )
    worker = None
    if db_ok:
        beat = WorkerHeartbeat.objects.order_by("-seen_at").first()
        worker = (
            None
            if beat is None
            else {"hostname": beat.hostname, "seen_at": beat.seen_at.isoformat()}
        )
    set_aside = selectors.set_aside_indexes() if db_ok else {}
    warnings = selectors.set_aside_warnings(set_aside)
    held = writeback.held_runs().order_by("-started_at").first() if db_ok else None
    if held is not None:
        warnings.append(
            f"Salesforce write-back run {held.pk} stopped before a mass change and waits for "
            "an admin's confirmation (Sync runs -> Salesforce write-back)."
        )
    down = [name for name, ok in (("database", db_ok), ("broker", broker_ok)) if not ok]
    body = {
        "status": "down" if down else ("degraded" if warnings else "ok"),
        "down": down,
        "warnings": warnings,
        "set_aside_indexes": set_aside,
        "database": db_detail,
        "broker": broker_detail,
        "last_sync": last_runs,
        # Informational: a worker that has not reported yet is not an outage of the web.
        "last_worker_heartbeat": worker,
    }
    return JsonResponse(body, status=200 if not down else 503)


@require_GET
@vary_on_headers("HX-Request")
@role_required(MANAGERS, message="Sync runs are visible to managers and admins.")
def sync_runs(request: HtmxHttpRequest) -> HttpResponse:
    """Runs with counts, duration and status, and the open quarantined records; while a run
    is in progress the `runs` partial polls itself every 2 seconds."""
    source = request.GET.get("source")
    # Admins see every quarantined record; a manager only their team's accounts'.
    scope = None
    if role_of(request.user) != "admin":
        scope = accounts_for_user(request.user).values("salesforce_id")
    context = selectors.sync_runs_page(
        source=source if source in Source.values else None, account_ids=scope
    )
    if request.htmx:
        return render(request, "portfolio/sync_runs.html#runs", context)
    return render(request, "portfolio/sync_runs.html", context)


@require_POST
@role_required(ADMINS, message="Only admins start a sync by hand.")
def sync_now(request: HtmxHttpRequest) -> HttpResponse:
    """Admins start a Salesforce sync in the background (the schedule does it every 15 min)."""
    if not settings.SALESFORCE_ENABLED:
        messages.error(request, "Salesforce is not configured, so there is nothing to sync.")
    else:
        salesforce_sync_enqueue()
        messages.success(request, "Salesforce sync started; the list below follows it.")
    return redirect("portfolio:sync_runs")
