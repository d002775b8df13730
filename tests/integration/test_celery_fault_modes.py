"""Issue 11 points 5 and 6: Celery semantics and fault modes (docs/failure-modes-celery.md).

Real PostgreSQL, Redis and Celery worker processes, the loopback fake Salesforce; Redis
outages are a dead port or a private `redis-server` stopped by the test (the shared Redis
on 6379 is never touched).
"""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator

import psycopg
import pytest
from celery import Celery
from django.db import connection, transaction
from django.urls import reverse

from integrations import bulkload, enqueue
from integrations.models import Source, SyncCursor, SyncRun, SyncStatus
from integrations.services import sync_run_start
from integrations.tasks import recover
from portfolio.models import Account, Region
from portfolio.sync.run import LOCK_KEY, sync_salesforce
from portfolio.tasks import sync_salesforce as sync_task
from tests.conftest import ROOT, worker_environment
from tests.dbschema import schema_of


def seed_accounts(fake, n: int) -> None:
    Region.objects.get_or_create(code="LATAM", defaults={"name": "Latin America"})
    for i in range(n):
        fake.add(
            "Account",
            Name=f"Fault {i:03d}",
            ARR__c=1000.0 + i,
            Region__c="LATAM",
            Sales_Segment__c="Commercial",
        )


def wait_for(condition: Callable[[], bool], timeout: float, message: Callable[[], str]) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, message()
        time.sleep(0.1)


def wait_until_the_sync_lock_is_free(timeout: float = 20) -> None:
    """PostgreSQL ends a killed process's session when it sees the closed socket."""

    def free() -> bool:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [LOCK_KEY])
            if cursor.fetchone()[0]:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [LOCK_KEY])
                return True
        return False

    wait_for(free, timeout, lambda: "the killed worker's session still holds the lock")


def other_connection() -> psycopg.Connection:
    """A second session on the test database, as another process would have."""
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    return psycopg.connect(**params, autocommit=True)


# --- 5. a worker killed outright ---------------------------------------------------------


@pytest.mark.worker
def test_a_killed_workers_task_is_picked_up_again_and_its_run_marked_failed_at_once(
    workers, fake_salesforce
):
    seed_accounts(fake_salesforce, 60)
    fake_salesforce.page_size = 5
    fake_salesforce.delay = 0.15  # 12 pages: the run takes a couple of seconds
    queue = f"test-{uuid.uuid4().hex[:12]}"
    # A short visibility timeout for the test (the production default is 15 minutes); the
    # time limits must stay below it (solo pool workers do not enforce them).
    short = {
        **fake_salesforce.worker_env(),
        "SALESFORCE_BATCH_SIZE": "5",
        "CELERY_VISIBILITY_TIMEOUT": "3",
        "CELERY_TASK_TIME_LIMIT": "2",
        "CELERY_LONG_TASK_TIME_LIMIT": "2",
    }
    first = workers(queue, short)
    sync_task.apply_async(queue=queue)
    wait_for(lambda: Account.objects.count() >= 15, 60, first.output)
    first.process.kill()  # SIGKILL of the whole (solo) worker: no cleanup at all
    first.process.wait()
    wait_until_the_sync_lock_is_free()
    dead = SyncRun.objects.get()
    assert dead.status == SyncStatus.RUNNING

    # A worker starting (here on another queue, so it cannot take the task) marks the
    # dead run failed at once, without waiting for a next run.
    other = workers(f"test-{uuid.uuid4().hex[:12]}", fake_salesforce.worker_env())
    dead.refresh_from_db()
    assert dead.status == SyncStatus.FAILED and "worker stopped" in dead.error
    assert SyncRun.objects.count() == 1
    other.stop()

    # A worker on the killed worker's queue picks the task up again within seconds of the
    # visibility timeout, and the redelivered run finishes the sync.
    fake_salesforce.delay = 0
    picked_at = time.monotonic()
    second = workers(queue, short)
    wait_for(
        lambda: SyncRun.objects.filter(status=SyncStatus.SUCCEEDED).exists(), 60, second.output
    )
    assert time.monotonic() - picked_at < 60
    assert Account.objects.count() == 60
    assert SyncRun.objects.get(pk=dead.pk).status == SyncStatus.FAILED


@pytest.mark.django_db(transaction=True)
def test_the_periodic_check_marks_failed_only_runs_whose_session_is_gone():
    gone = other_connection()
    with gone.cursor() as c:
        c.execute("SELECT pg_backend_pid()")
        gone_pid = c.fetchone()[0]
    gone.close()
    live = sync_run_start(source=Source.GITLAB, trigger="live")  # this session: alive
    dead = SyncRun.objects.create(
        source=Source.SALESFORCE,
        started_at=live.started_at,
        trigger="dead",
        details={"backend_pid": gone_pid},
    )
    wait_for(lambda: _pid_gone(gone_pid), 10, lambda: "closed session still listed")

    assert "1 stopped runs marked failed" in recover.run()

    dead.refresh_from_db()
    live.refresh_from_db()
    assert dead.status == SyncStatus.FAILED and dead.finished_at and "worker stopped" in dead.error
    assert live.status == SyncStatus.RUNNING


def _pid_gone(pid: int) -> bool:
    with connection.cursor() as c:
        c.execute("SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = %s)", [pid])
        return bool(c.fetchone()[0])


def test_every_task_has_time_limits_below_the_visibility_timeout():
    from django.conf import settings

    from config.celery import app

    app.loader.import_default_modules()
    conf = app.conf
    assert conf.worker_cancel_long_running_tasks_on_connection_loss is True
    assert conf.task_acks_late and conf.task_reject_on_worker_lost
    visibility = conf.broker_transport_options["visibility_timeout"]
    ours = [t for name, t in app.tasks.items() if not name.startswith("celery.")]
    assert len(ours) > 10
    for task in ours:
        hard = task.time_limit or conf.task_time_limit
        soft = task.soft_time_limit or conf.task_soft_time_limit
        assert hard and soft and soft < hard < visibility, task.name
    assert app.tasks["portfolio.sync_salesforce"].time_limit == (
        settings.CELERY_LONG_TASK_TIME_LIMIT
    )


def test_a_time_limit_at_or_above_the_visibility_timeout_stops_start_up():
    env = worker_environment(
        {"CELERY_VISIBILITY_TIMEOUT": "600", "CELERY_LONG_TASK_TIME_LIMIT": "600"}
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "CELERY_LONG_TASK_TIME_LIMIT (600 s) must be positive and below" in result.stderr


# --- 6. indexes set aside by an interrupted bulk load -----------------------------------


def _set_aside_account_indexes() -> list[str]:
    cursor, _ = SyncCursor.objects.get_or_create(source=Source.SALESFORCE, object_name="Account")
    return bulkload.set_aside(cursor, Account._meta.db_table)


@pytest.mark.worker
def test_set_aside_indexes_are_shown_while_missing_and_rebuilt_on_worker_start(
    celery_worker, client, admin_user
):
    before = schema_of("portfolio_account")
    names = _set_aside_account_indexes()  # what a bulk load killed mid-way leaves
    assert names and schema_of("portfolio_account") != before

    health = client.get("/healthz").json()
    assert health["status"] == "degraded"
    assert health["set_aside_indexes"]["Account"] == {"missing": names, "loading": False}
    assert "stopped bulk load" in health["warnings"][0]
    client.force_login(admin_user)
    page = client.get(reverse("portfolio:sync_runs")).content.decode()
    assert "Missing indexes" in page and names[0] in page

    worker = celery_worker()  # no sync, no migrate: the worker start rebuilds them

    wait_for(
        lambda: not SyncCursor.objects.get(object_name="Account").deferred_ddl, 30, worker.output
    )
    assert schema_of("portfolio_account") == before
    health = client.get("/healthz").json()
    assert health["status"] == "ok" and health["set_aside_indexes"] == {}
    assert "Missing indexes" not in client.get(reverse("portfolio:sync_runs")).content.decode()


@pytest.mark.django_db(transaction=True)
def test_the_periodic_check_rebuilds_set_aside_indexes_but_not_under_a_live_load():
    before = schema_of("portfolio_account")
    names = _set_aside_account_indexes()
    loader = other_connection()  # a sync that is loading holds the lock
    with loader.cursor() as c:
        c.execute("SELECT pg_advisory_lock(%s)", [LOCK_KEY])
    try:
        recover.run()
        assert bulkload.set_aside_now() == {"Account": {"missing": names, "loading": True}}
    finally:
        loader.close()
    wait_until_the_sync_lock_is_free()

    recover.run()

    assert bulkload.set_aside_now() == {}
    assert schema_of("portfolio_account") == before


# --- 6. Redis down ------------------------------------------------------------------------

DEAD_REDIS = "redis://127.0.0.1:1/0"  # nothing listens on port 1


@pytest.mark.django_db
def test_with_redis_down_the_dashboard_answers_and_sync_now_is_a_clear_503(
    client, admin_user, settings, fake_salesforce
):
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": DEAD_REDIS}}
    settings.CELERY_BROKER_URL = DEAD_REDIS
    client.force_login(admin_user)

    assert client.get(reverse("ui:home")).status_code == 200

    response = client.post(reverse("portfolio:sync_now"))
    assert response.status_code == 503
    page = response.content.decode()
    assert "task queue (Redis) is not answering" in page and "Salesforce sync" in page
    htmx = client.post(reverse("portfolio:sync_now"), headers={"HX-Request": "true"})
    assert htmx.status_code == 503 and htmx["Content-Type"].startswith("text/plain")
    assert not SyncRun.objects.exists()


@pytest.fixture
def private_redis() -> Iterator[tuple[str, subprocess.Popen]]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    wait_for(lambda: enqueue.broker_available(url=url), 10, lambda: "redis-server did not start")
    try:
        yield url, process
    finally:
        process.kill()
        process.wait()


@pytest.mark.django_db
def test_an_enqueue_after_commit_never_raises_when_redis_has_gone(
    private_redis, settings, caplog, django_capture_on_commit_callbacks
):
    url, server = private_redis
    # Not the current app: the shared tasks of other tests must keep the real one.
    app = Celery("enqueue-test", broker=url, backend=url, set_as_current=False)
    app.conf.update(
        broker_transport_options=settings.CELERY_BROKER_TRANSPORT_OPTIONS,
        result_backend_transport_options=settings.CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS,
        redis_socket_connect_timeout=settings.CELERY_REDIS_SOCKET_CONNECT_TIMEOUT,
    )

    @app.task(name="tests.noop")
    def noop(**kwargs):
        return kwargs

    assert enqueue.enqueue_now(noop, n=1) is True
    server.kill()
    server.wait()
    assert enqueue.broker_available(url=url) is False

    caplog.set_level(logging.ERROR, logger="integrations.enqueue")
    started = time.monotonic()
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        Region.objects.create(code="ZZ", name="Saved before the enqueue")
        enqueue.enqueue_on_commit(noop, n=2)  # sent after commit: fails, never raises

    assert Region.objects.filter(code="ZZ").exists()
    assert "Could not enqueue tests.noop" in caplog.text
    assert time.monotonic() - started < 15


# --- 6. PostgreSQL lost mid-sync --------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_sync_that_loses_postgresql_exits_with_one_line_and_fails_its_run(fake_salesforce):
    seed_accounts(fake_salesforce, 60)
    fake_salesforce.page_size = 5
    fake_salesforce.delay = 0.15
    env = worker_environment({**fake_salesforce.worker_env(), "SALESFORCE_BATCH_SIZE": "5"})
    command = subprocess.Popen(
        [sys.executable, "manage.py", "sync_salesforce"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: Account.objects.count() >= 10, 60, lambda: "sync never stored")
        with connection.cursor() as c:  # the DBA (or a failover) ends the sync's session
            c.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                "AND backend_type = 'client backend'"
            )
        stdout, stderr = command.communicate(timeout=60)
    finally:
        command.kill()

    assert command.returncode == 1, stdout + stderr
    assert "Traceback" not in stderr, stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("CommandError: Salesforce sync stopped: lost the connection to ")
    assert "PostgreSQL" in last
    run = SyncRun.objects.get()
    assert run.status == SyncStatus.FAILED and run.finished_at is not None
    assert "Lost the connection to PostgreSQL" in run.error
    assert 10 <= Account.objects.count() < 60  # what was committed stays


# --- 6. a skipped run, an expired fixed session -----------------------------------------


@pytest.mark.django_db
def test_a_run_skipped_for_the_lock_leaves_a_visible_skipped_row(fake_salesforce, client, manager):
    holder = other_connection()
    with holder.cursor() as c:
        c.execute("SELECT pg_advisory_lock(%s)", [LOCK_KEY])
    try:
        outcome = sync_salesforce(trigger="schedule")
    finally:
        holder.close()

    assert outcome.run is None
    row = SyncRun.objects.get()
    assert outcome.skipped_run == row
    assert (row.source, row.status, row.trigger) == (
        Source.SALESFORCE,
        SyncStatus.SKIPPED,
        "schedule",
    )
    assert row.finished_at is not None and "another Salesforce sync is running" in row.error
    client.force_login(manager)
    page = client.get(reverse("portfolio:sync_runs")).content.decode()
    assert "Skipped" in page and "another Salesforce sync is running" in page


@pytest.mark.django_db
def test_an_expired_fixed_session_keeps_its_guidance_in_the_run(fake_salesforce):
    fake_salesforce.expire_sessions()

    run = sync_salesforce(trigger="schedule").run

    assert run.status == SyncStatus.FAILED
    assert run.error.startswith("HTTP 401")
    assert "INVALID_SESSION_ID" in run.error
    assert "set a fresh session id" in run.error and "SALESFORCE_USERNAME" in run.error
    assert fake_salesforce.session_id not in run.error
