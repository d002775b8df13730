"""Shared fixtures: roles, users, a real Celery worker process.

Tests run against the real PostgreSQL and Redis that `make test` found or started
(DATABASE_URL / REDIS_URL); nothing of our own is mocked.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.db import connection

from tests import factories
from tests.fakes.salesforce import fake_salesforce, salesforce_ca  # noqa: F401 (fixtures)

ROOT = Path(__file__).resolve().parent.parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that commits (transactional_db, live_server, transaction=True) restores
    the rows the data migrations seeded (groups, regions, rule sets, schedules) from the
    serialized copy, and never re-runs post_migrate on flush.

    One policy for all: mixing serialized and plain transactional tests makes a plain
    test's flush re-create content types that the next serialized test then inserts again
    (a unique violation), depending on test order.
    """
    for item in items:
        marker = item.get_closest_marker("django_db")
        names = getattr(item, "fixturenames", ())
        commits = (
            "transactional_db" in names
            or "live_server" in names
            or (marker is not None and marker.kwargs.get("transaction"))
        )
        if commits:
            kwargs = dict(marker.kwargs) if marker is not None else {}
            kwargs.update(transaction=True, serialized_rollback=True)
            item.add_marker(pytest.mark.django_db(**kwargs), append=False)


@pytest.fixture(scope="session", autouse=True)
def _cache_of_this_run():
    """The tests' Redis database outlives a run, and the primary keys start again at 1 in
    the next one: what an earlier run kept for a user (a bell count, a cached page value)
    must not show in this one."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture(autouse=True)
def _test_settings(settings):
    # Tests use the test client over plain HTTP and no collectstatic manifest.
    settings.SECURE_SSL_REDIRECT = False
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture
def tam(db):
    return factories.UserFactory(role="TAM")


@pytest.fixture
def manager(db):
    return factories.UserFactory(role="Manager")


@pytest.fixture
def admin_user(db):
    return factories.UserFactory(role="Admin", is_staff=True, is_superuser=True)


@pytest.fixture
def team(manager, tam):
    team = factories.TeamFactory(manager=manager)
    team.tams.add(tam)
    return team


class CeleryWorker:
    """A `celery worker` subprocess consuming a queue of its own from the real Redis."""

    def __init__(self, process: subprocess.Popen, queue: str, log: Path) -> None:
        self.process = process
        self.queue = queue
        self.log = log

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def worker_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment a subprocess (worker, command) needs to use the *test* database."""
    from django.conf import settings

    # The same server as settings.DATABASE_URL, but the test database pytest-django made.
    url = urlsplit(settings.DATABASE_URL)
    env = dict(os.environ)
    env["DATABASE_URL"] = urlunsplit(url._replace(path="/" + connection.settings_dict["NAME"]))
    env["REDIS_URL"] = settings.REDIS_URL
    env.setdefault("SECRET_KEY", settings.SECRET_KEY)
    env.update(extra or {})
    return env


@pytest.fixture
def celery_worker(
    transactional_db, django_db_serialized_rollback, tmp_path
) -> Iterator[Callable[..., CeleryWorker]]:
    """Start a real worker (`celery -A config worker`) on a fresh queue.

    Returns a function taking extra environment variables (e.g. the fake Salesforce's
    URL); the test's own Celery app is pointed at the same queue. The worker sees only
    committed rows, hence transactional_db; its flush after each test also empties what
    the data migrations seeded (roles, regions, rule sets), which serialized rollback puts
    back before the next worker test.
    """
    from config.celery import app

    workers: list[CeleryWorker] = []
    previous_queue = app.conf.task_default_queue

    def start(extra_env: dict[str, str] | None = None) -> CeleryWorker:
        queue = f"test-{uuid.uuid4().hex[:12]}"
        env = worker_environment({"CELERY_TASK_DEFAULT_QUEUE": queue, **(extra_env or {})})
        log = tmp_path / f"worker-{queue}.log"
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "-Q",
                queue,
                "--pool",
                "solo",
                "--loglevel",
                "INFO",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            cwd=ROOT,
            env=env,
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
        )
        worker = CeleryWorker(process, queue, log)
        workers.append(worker)
        app.conf.task_default_queue = queue
        _wait_for_ready(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()
    app.conf.task_default_queue = previous_queue


@pytest.fixture
def workers(transactional_db, django_db_serialized_rollback, tmp_path) -> Iterator:
    """Like `celery_worker`, but the caller names the queue: a second worker must consume
    the queue of the one that was killed, to pick its task up again."""
    started: list[CeleryWorker] = []

    def start(queue: str, extra_env: dict[str, str]) -> CeleryWorker:
        env = worker_environment({"CELERY_TASK_DEFAULT_QUEUE": queue, **extra_env})
        log = tmp_path / f"worker-{len(started)}.log"
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", queue]
            + ["--pool", "solo", "--loglevel", "INFO", "--without-gossip"]
            + ["--without-mingle", "--without-heartbeat", "-n", f"w{len(started)}@%h"],
            cwd=ROOT,
            env=env,
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
        )
        worker = CeleryWorker(process, queue, log)
        started.append(worker)
        _wait_for_ready(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def _wait_for_ready(worker: CeleryWorker, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if "ready." in worker.output():
            return
        if worker.process.poll() is not None:
            raise RuntimeError(f"Celery worker exited early:\n{worker.output()}")
        time.sleep(0.2)
    raise RuntimeError(f"Celery worker not ready after {timeout}s:\n{worker.output()}")
