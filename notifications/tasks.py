"""Celery tasks of the notifications app. They take ids, call a service, own their
retry policy and are safe to run twice (STYLE.md, Tasks).

- `notifications.produce` (beat, every 5 minutes): the producer, then the chat fan-out
  of what it inserted, then the posts;
- `notifications.webhooks_deliver` (beat, every minute, and after each produce): the
  due chat posts, with their backoff;
- `notifications.digests_daily` (beat, 07:00): one `digest_send` per user with
  something to say;
- `notifications.digest_send`: one user's digest of one day, sent once.
"""

from __future__ import annotations

import datetime as dt
import smtplib

from celery import shared_task
from django.db import transaction
from django.utils import timezone

from integrations.enqueue import enqueue_now
from notifications import producer, services
from notifications.models import Notification, NotificationCursor

CHAT_CURSOR = "chat_fanout"


@shared_task(name="notifications.produce", bumps_data_version=False, acks_late=True)
def notifications_produce() -> str:
    result = producer.notifications_produce()
    if result.skipped:
        return "skipped: another run holds the lock"
    queued = chat_fanout()
    enqueue_now(webhook_deliveries_send)
    return f"{result.total} notifications, {queued} chat posts queued, {result.purged} purged"


def chat_fanout() -> int:
    """Fan out, to chat, the notifications inserted since the chat cursor's id. Ids are
    only ever inserted by the producer under its lock, so an id cursor misses none."""
    with transaction.atomic():
        cursor, _ = NotificationCursor.objects.select_for_update().get_or_create(
            source=CHAT_CURSOR,
            defaults={
                "position": timezone.now(),
                "last_id": Notification.objects.order_by("-id").values_list("id", flat=True).first()
                or 0,
            },
        )
        last = Notification.objects.order_by("-id").values_list("id", flat=True).first() or 0
        queued = services.chat_deliveries_queue(after_id=cursor.last_id, up_to_id=last)
        cursor.last_id = max(cursor.last_id, last)
        cursor.position = timezone.now()
        cursor.produced = queued
        cursor.save(update_fields=["last_id", "position", "produced", "updated_at"])
    return queued


@shared_task(name="notifications.webhooks_deliver", bumps_data_version=False, acks_late=True)
def webhook_deliveries_send() -> str:
    counts = services.webhook_deliveries_send()
    return ", ".join(f"{v} {k}" for k, v in counts.items())


@shared_task(name="notifications.digests_daily", bumps_data_version=False, acks_late=True)
def digests_daily() -> int:
    day = timezone.localdate()
    users = services.digest_candidates()
    for user_id in users:
        enqueue_now(digest_send, user_id, day.isoformat())
    return len(users)


@shared_task(
    bind=True,
    name="notifications.digest_send",
    bumps_data_version=False,
    acks_late=True,
    max_retries=5,
    default_retry_delay=120,
)
def digest_send(self, user_id: int, day: str) -> str:
    """One user's digest of one day; SMTP failures are retried two minutes apart, then
    the day's digest is marked failed."""
    when = dt.date.fromisoformat(day)
    try:
        return services.digest_send(user_id=user_id, day=when)
    except (smtplib.SMTPException, OSError) as exc:
        if self.request.retries >= self.max_retries:
            services.digest_give_up(user_id=user_id, day=when)
            return f"digest of {user_id} failed: {type(exc).__name__}"
        raise self.retry(exc=exc) from None
