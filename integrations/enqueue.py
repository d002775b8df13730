"""Enqueueing Celery tasks when Redis (the broker) may be down.

Two rules (docs/failure-modes-celery.md):

- Before a write that starts background work, `broker_require()` asks Redis whether it
  answers; if not it raises `BrokerUnavailable`, nothing is written, and
  `BrokerUnavailableMiddleware` answers 503 with a message saying so (a page, or JSON
  under /api/, or a short text for htmx).
- The task itself is sent by `enqueue_on_commit(task, ...)` once the transaction commits,
  and that never raises: if Redis went away in between, the failure is logged and the work
  is left to the periodic sweeps (or to the person, told to try again). So a request never
  ends in a 500 after its database change committed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import redis
from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from kombu.exceptions import OperationalError as KombuOperationalError

logger = logging.getLogger(__name__)

UNAVAILABLE = (
    "Portfolio's task queue (Redis) is not answering, so this could not be started. "
    "Nothing was changed; try again in a few minutes."
)
# A task that could not be sent after its change committed (another app's enqueue).
LOST_AFTER_COMMIT = (
    "Portfolio's task queue (Redis) stopped answering: what you saved is stored, but the "
    "background work it starts could not be queued. Try again once the queue is back."
)


class BrokerUnavailable(Exception):
    """Redis, the Celery broker, does not answer. The message is meant for the user."""

    def __init__(self, message: str = UNAVAILABLE) -> None:
        super().__init__(message)
        self.message = message


def broker_available(*, url: str | None = None, timeout: float = 2.0) -> bool:
    """Whether the broker answers a PING within `timeout` seconds."""
    client = redis.Redis.from_url(
        url or settings.CELERY_BROKER_URL, socket_timeout=timeout, socket_connect_timeout=timeout
    )
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


def broker_require(*, message: str = UNAVAILABLE) -> None:
    """Raise `BrokerUnavailable` (message for the user) unless the broker answers. Call it
    before the write whose background work would be lost."""
    if not broker_available():
        logger.warning("Task queue (Redis) is not answering: %s", settings.CELERY_BROKER_URL)
        raise BrokerUnavailable(message)


def enqueue_on_commit(task: Any, /, *args: Any, **kwargs: Any) -> None:
    """`task.delay(*args, **kwargs)` once the current transaction commits (at once outside
    one). Never raises: a broker failure is logged with the task's name, and the work is
    left to whatever periodic sweep covers it."""
    transaction.on_commit(lambda: enqueue_now(task, *args, **kwargs))


def enqueue_now(task: Any, /, *args: Any, **kwargs: Any) -> bool:
    """Send the task now; False (logged) when the broker refused it. Never raises."""
    try:
        task.apply_async(args=args, kwargs=kwargs)
    except Exception as exc:  # noqa: BLE001 - kombu, redis-py and Celery's RuntimeError
        logger.error(
            "Could not enqueue %s (task queue unavailable: %s); the periodic sweeps will "
            "pick the work up",
            getattr(task, "name", task),
            str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__,
        )
        return False
    return True


def broker_unavailable_response(request: HttpRequest, message: str) -> HttpResponse:
    """503 with the message: JSON for the API, plain text for htmx, else a page."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": message}, status=503, headers={"Retry-After": "60"})
    if getattr(request, "htmx", False):
        return HttpResponse(message, status=503, content_type="text/plain; charset=utf-8")
    response = render(
        request, "integrations/broker_unavailable.html", {"message": message}, status=503
    )
    response["Retry-After"] = "60"
    return response


class BrokerUnavailableMiddleware:
    """Turn `BrokerUnavailable` (and a send that failed in an app that does not use
    `enqueue_on_commit`) into a 503 the user can read, instead of a 500."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, BrokerUnavailable):
            return broker_unavailable_response(request, exception.message)
        if isinstance(exception, KombuOperationalError):
            logger.error("Task queue (Redis) unavailable after a commit: %s", exception)
            return broker_unavailable_response(request, LOST_AFTER_COMMIT)
        return None
