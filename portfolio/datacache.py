"""What pages compute from data that changes rarely, cached under a data version.

The data version is one counter in the cache (Redis). Every write bumps it:

- any model of ours saved or deleted through the ORM (and many-to-many changes), once per
  transaction, after it commits (`post_save`, `post_delete`, `m2m_changed`);
- any unsafe request (POST, PUT, PATCH, DELETE), after its response
  (`DataVersionMiddleware`: covers `QuerySet.update()` and SQL written by views);
- any Celery task, when it ends (`task_postrun`: syncs, re-evaluations, write-back sweeps
  write set-based, without ORM signals).

An entry is stored under `portfolio:data:<version>:<name>:<scope>`, so a bump makes every
entry unreachable at once (they expire after `TTL` seconds, which also bounds how long a
write that reached none of the three could go unseen: a management command's raw SQL).
A transaction that wrote bypasses the cache until it commits: its own reads see its
writes, and nothing uncommitted is stored for others.

Redis down: `cached()` computes the value itself and stores nothing, so pages answer as
they would without the cache (docs/failure-modes-celery.md, "Redis down")."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Hashable
from typing import TypeVar

from django.core.cache import cache
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.http import HttpRequest, HttpResponse
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

VERSION_KEY = "portfolio:data-version"
TTL = 600
# Models whose writes do not change what pages show (sessions are written by reads).
IGNORED_APPS = frozenset(
    {"sessions", "admin", "axes", "contenttypes", "django_celery_beat", "notifications"}
)
# Housekeeping rows no cached page reads: a worker's heartbeat (every minute) would
# otherwise empty every cache every minute.
IGNORED_MODELS = frozenset({"integrations.workerheartbeat"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})

T = TypeVar("T")


def data_version() -> int | None:
    """The current data version; None when the cache cannot be reached."""
    try:
        version = cache.get(VERSION_KEY)
        if version is None:
            cache.add(VERSION_KEY, 1, timeout=None)
            version = cache.get(VERSION_KEY, 1)
    except (RedisError, OSError) as exc:
        logger.warning("Data cache unavailable, computing every value (%s)", exc)
        return None
    return int(version)


def data_version_bump() -> None:
    """A write happened: every cached value is stale."""
    try:
        cache.incr(VERSION_KEY)
    except ValueError:  # no counter yet (or it was evicted): a fresh one
        try:
            cache.add(VERSION_KEY, 1, timeout=None)
        except (RedisError, OSError) as exc:
            logger.warning("Data version not bumped: cache unavailable (%s)", exc)
    except (RedisError, OSError) as exc:
        logger.warning("Data version not bumped: cache unavailable (%s)", exc)


def _lookup(name: str, scope: tuple[Hashable, ...]) -> tuple[str | None, object | None]:
    """The entry's key and stored value at the current data version. No key when nothing
    may be stored or read: this transaction wrote and has not committed (its reads must
    see its writes, and other connections must not be handed them), or the cache is down."""
    if _written_in_transaction():
        return None, None
    version = data_version()
    if version is None:
        return None, None
    key = f"portfolio:data:{version}:{name}:" + ":".join(str(part) for part in scope)
    try:
        return key, cache.get(key)
    except (RedisError, OSError):
        return None, None


def peek(name: str, scope: tuple[Hashable, ...]) -> object | None:
    """The value `cached()` stored for `name` and `scope` at the current data version, or
    None (not stored, the cache down, or this transaction wrote): nothing is computed. For
    a page that shows a part at once when it is known and loads it afterwards otherwise."""
    return _lookup(name, scope)[1]


def cached(name: str, scope: tuple[Hashable, ...], compute: Callable[[], T]) -> T:
    """`compute()`'s value for `name` and `scope` at the current data version (computed
    and stored on a miss; computed and not stored when the cache is down)."""
    key, value = _lookup(name, scope)
    if value is None:
        value = compute()
        if key is not None:
            with contextlib.suppress(RedisError, OSError):
                cache.set(key, value, timeout=TTL)
    return value  # type: ignore[return-value]


# --- What bumps the version --------------------------------------------------------------


def _written_in_transaction(using: str = DEFAULT_DB_ALIAS) -> bool:
    conn = connections[using]
    # Each entry is (savepoint ids, callable, robust); django-stubs still has the 2-tuples
    # of Django before 4.2, so the callable is read by position.
    return conn.in_atomic_block and any(
        entry[1] is data_version_bump for entry in conn.run_on_commit
    )


def _bump_on_commit(using: str = DEFAULT_DB_ALIAS) -> None:
    """Bump once per transaction, after it commits (at once outside a transaction)."""
    if not _written_in_transaction(using):
        transaction.on_commit(data_version_bump, using=using)


def _counts(model) -> bool:
    meta = model._meta
    return meta.app_label not in IGNORED_APPS and meta.label_lower not in IGNORED_MODELS


def _model_written(sender, using: str = DEFAULT_DB_ALIAS, **kwargs) -> None:
    if _counts(sender):
        _bump_on_commit(using)


def _m2m_changed(sender, action: str, using: str = DEFAULT_DB_ALIAS, **kwargs) -> None:
    if action.startswith("post_") and _counts(sender):
        _bump_on_commit(using)


def _task_finished(sender=None, **kwargs) -> None:
    """Tasks write set-based, past the ORM's signals: each bumps when it ends, except the
    housekeeping ones that write nothing a cached page shows (`bumps_data_version=False`
    on the task: the minutely heartbeat and recovery, notifications); their ORM writes
    still count through the signals above."""
    if getattr(sender, "bumps_data_version", True):
        data_version_bump()


def signals_connect() -> None:
    """Called once from PortfolioConfig.ready()."""
    from celery.signals import task_postrun
    from django.db.models.signals import m2m_changed, post_delete, post_save

    post_save.connect(_model_written, dispatch_uid="portfolio.datacache.save")
    post_delete.connect(_model_written, dispatch_uid="portfolio.datacache.delete")
    m2m_changed.connect(_m2m_changed, dispatch_uid="portfolio.datacache.m2m")
    task_postrun.connect(_task_finished, dispatch_uid="portfolio.datacache.task", weak=False)


class DataVersionMiddleware:
    """Bumps the data version after every unsafe request, whatever it wrote and how."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if request.method not in SAFE_METHODS:
            data_version_bump()
        return response
