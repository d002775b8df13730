"""Writes of the notifications app: reading marks, preferences, the daily digest, the
team chat posts. Producing notifications is `notifications.producer`."""

from __future__ import annotations

import datetime as dt
import random
import smtplib
from collections.abc import Iterable
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth.models import User
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives
from django.db import connection, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from integrations import webhooks
from notifications import bell, secrets
from notifications.models import (
    Channel,
    DeliveryStatus,
    DigestStatus,
    Kind,
    Notification,
    NotificationDigest,
    NotificationPreference,
    TeamWebhook,
    WebhookDelivery,
)
from notifications.preferences import DEFAULTS, default_role

DIGEST_LOOKBACK = dt.timedelta(days=2)
DIGEST_MAX_ITEMS = 50
UNSUBSCRIBE_SALT = "notifications.unsubscribe"
WEBHOOK_MAX_ATTEMPTS = 6
WEBHOOK_BATCH = 20


def absolute(path: str) -> str:
    """A path of this site as a link for a mail or a chat message."""
    return settings.PORTFOLIO_BASE_URL.rstrip("/") + path if path.startswith("/") else path


# --- Reading ---------------------------------------------------------------------------------


def notification_mark_read(*, user: User, notification_id: int) -> Notification | None:
    """Mark one of the user's own notifications read (None: not theirs, or no such one)."""
    notification = Notification.objects.filter(pk=notification_id, user=user).first()
    if notification is not None and notification.read_at is None:
        notification.read_at = timezone.now()
        notification.save(update_fields=["read_at"])
        bell.forget([user.pk])
    return notification


def notifications_mark_all_read(*, user: User) -> int:
    """Mark every unread notification of the user read; one UPDATE."""
    count = Notification.objects.filter(user=user, read_at__isnull=True).update(
        read_at=timezone.now()
    )
    bell.forget([user.pk])
    return count


# --- Preferences -----------------------------------------------------------------------------


def notification_preferences_save(*, user: User, enabled: Iterable[tuple[str, str]]) -> int:
    """Store the user's whole grid: `enabled` is the (kind, channel) pairs ticked. Only
    the cells that differ from the role's default are kept, so a later change of the
    defaults reaches everyone who did not choose otherwise. Returns rows kept."""
    ticked = set(enabled)
    unknown = [p for p in ticked if p[0] not in Kind.values or p[1] not in Channel.values]
    if unknown:
        raise ValidationError({"preferences": f"Unknown notification or channel: {unknown[0]}"})
    base = DEFAULTS[default_role(user)]
    rows = [
        NotificationPreference(user=user, kind=k, channel=c, enabled=(k, c) in ticked)
        for k in Kind.values
        for c in Channel.values
        if ((k, c) in ticked) != (k in base[c])
    ]
    with transaction.atomic():
        NotificationPreference.objects.filter(user=user).delete()
        NotificationPreference.objects.bulk_create(rows)
        bell.forget([user.pk])  # the bell counts the kinds shown in the app only
    return len(rows)


def unsubscribe_token(user: User) -> str:
    """The signed token of a digest's unsubscribe link (no expiry: an old mail's link
    keeps working; it can only switch e-mail off)."""
    return signing.dumps({"u": user.pk}, salt=UNSUBSCRIBE_SALT, compress=True)


def user_from_unsubscribe_token(token: str) -> User | None:
    try:
        data = signing.loads(token, salt=UNSUBSCRIBE_SALT)
    except signing.BadSignature:
        return None
    return User.objects.filter(pk=data.get("u"), is_active=True).first()


def digest_unsubscribe(*, user: User) -> None:
    """Switch the e-mail channel off for every kind (the preferences page can switch it
    back on)."""
    NotificationPreference.objects.bulk_create(
        [
            NotificationPreference(user=user, kind=k, channel=Channel.EMAIL, enabled=False)
            for k in Kind.values
        ],
        update_conflicts=True,
        unique_fields=["user", "kind", "channel"],
        update_fields=["enabled"],
    )


def wanted(user_ids: Iterable[int], channel: str) -> dict[int, set[str]]:
    """{user id: kinds wanted on the channel} for many users in two queries (their
    groups, their stored choices), for the digest and chat fan-out."""
    users = list(
        User.objects.filter(pk__in=set(user_ids), is_active=True).prefetch_related("groups")
    )
    out: dict[int, set[str]] = {}
    for user in users:
        # role_of reads the cached group names: no query per user.
        user._portfolio_group_names = {g.name for g in user.groups.all()}  # type: ignore[attr-defined]
        out[user.pk] = set(DEFAULTS[default_role(user)][channel])
    for user_id, kind, enabled in NotificationPreference.objects.filter(
        user_id__in=out, channel=channel
    ).values_list("user_id", "kind", "enabled"):
        (out[user_id].add if enabled else out[user_id].discard)(kind)
    return out


# --- Daily e-mail digest ---------------------------------------------------------------------


def digest_candidates(*, now: dt.datetime | None = None) -> list[int]:
    """Users with unread notifications not yet mailed, of a kind they want by e-mail."""
    now = now or timezone.now()
    user_ids = (
        Notification.objects.filter(
            digest__isnull=True, read_at__isnull=True, created_at__gte=now - DIGEST_LOOKBACK
        )
        .order_by()
        .values_list("user_id", flat=True)
        .distinct()
    )
    kinds = wanted(list(user_ids), Channel.EMAIL)
    return [user_id for user_id, wanted_kinds in kinds.items() if wanted_kinds]


def digest_send(*, user_id: int, day: dt.date, now: dt.datetime | None = None) -> str:
    """Send the user's digest for `day`, once: the (user, day) row is locked while the
    mail goes and marked sent in the same transaction, so a retried or doubled task
    finds it sent and sends nothing. Nothing to say: no mail and no row. SMTP errors are
    recorded and re-raised (after the commit) for the task's retries."""
    now = now or timezone.now()
    user = User.objects.filter(pk=user_id, is_active=True).first()
    if user is None or not user.email:
        return "no address"
    kinds = wanted([user_id], Channel.EMAIL).get(user_id, set())
    failure: Exception | None = None
    with transaction.atomic():
        digest, _ = NotificationDigest.objects.get_or_create(user=user, day=day)
        digest = NotificationDigest.objects.select_for_update().get(pk=digest.pk)
        if digest.status == DigestStatus.SENT:
            return "already sent"
        rows = Notification.objects.filter(
            user=user,
            kind__in=kinds,
            digest__isnull=True,
            read_at__isnull=True,
            created_at__gte=now - DIGEST_LOOKBACK,
        ).order_by("-created_at", "-id")
        items = list(rows[: DIGEST_MAX_ITEMS + 1])
        if not items:
            digest.delete()
            return "nothing to send"
        more = len(items) > DIGEST_MAX_ITEMS
        items = items[:DIGEST_MAX_ITEMS]
        message = _digest_message(user, items, more=more, day=day)
        digest.attempts += 1
        try:
            message.send(fail_silently=False)
        except (smtplib.SMTPException, OSError) as exc:
            failure = exc
            digest.error = f"{type(exc).__name__}: {exc}"[:500]
            digest.save(update_fields=["attempts", "error"])
        else:
            digest.status = DigestStatus.SENT
            digest.sent_at = timezone.now()
            digest.notification_count = len(items)
            digest.error = ""
            digest.save(
                update_fields=["attempts", "status", "sent_at", "notification_count", "error"]
            )
            Notification.objects.filter(pk__in=[n.pk for n in items]).update(digest=digest)
    if failure is not None:
        raise failure
    return f"sent {len(items)}"


def digest_give_up(*, user_id: int, day: dt.date) -> None:
    NotificationDigest.objects.filter(user_id=user_id, day=day, status=DigestStatus.SENDING).update(
        status=DigestStatus.FAILED
    )


def _digest_message(
    user: User, items: list[Notification], *, more: bool, day: dt.date
) -> EmailMultiAlternatives:
    unsubscribe = absolute(reverse("notifications:unsubscribe", args=[unsubscribe_token(user)]))
    context = {
        "user": user,
        "items": [(n, absolute(n.url) if n.url else "") for n in items],
        "more": more,
        "day": day,
        "all_url": absolute(reverse("notifications:list")),
        "preferences_url": absolute(reverse("notifications:preferences")),
        "unsubscribe_url": unsubscribe,
    }
    count = len(items)
    subject = f"Portfolio: {count}{'+' if more else ''} thing{'s' if count != 1 else ''} to look at"
    message = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string("notifications/digest.txt", context),
        to=[user.email],
        headers={"List-Unsubscribe": f"<{unsubscribe}>"},
    )
    message.attach_alternative(render_to_string("notifications/digest.html", context), "text/html")
    return message


# --- Team chat -------------------------------------------------------------------------------


def webhook_url_validate(url: str) -> None:
    """Only https (plain http to a loopback address, for tests and local fakes)."""
    parts = urlsplit(url.strip())
    loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
    if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
        raise ValidationError({"url": "An incoming webhook URL starts with https://."})


def team_webhook_set(
    *, team_id: int, service: str, url: str, user: User | None, enabled: bool = True
) -> TeamWebhook:
    """Store (encrypted) a team's incoming webhook URL."""
    webhook_url_validate(url)
    webhook, _ = TeamWebhook.objects.update_or_create(
        team_id=team_id,
        defaults={
            "service": service,
            "url_encrypted": secrets.encrypt(url.strip()),
            "url_hint": secrets.hint(url.strip()),
            "enabled": enabled,
            "updated_by": user,
            "last_error": "",
        },
    )
    return webhook


def chat_deliveries_queue(*, after_id: int, up_to_id: int) -> int:
    """Fan the notifications with ids in (after_id, up_to_id] out to the chat channels
    of their users' teams, for users who want that kind in chat: one INSERT ... SELECT,
    unique per (team, kind, key, day), so a TAM and their manager caring about one
    account make one post."""
    if up_to_id <= after_id:
        return 0
    member_sql = (
        "SELECT tt.team_id, tt.user_id FROM portfolio_team_tams tt "
        "UNION SELECT t.id, t.manager_id FROM portfolio_team t"
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT DISTINCT n.user_id FROM {Notification._meta.db_table} n "  # nosec B608 # identifiers from code
            f"JOIN ({member_sql}) m ON m.user_id = n.user_id "
            f"JOIN {TeamWebhook._meta.db_table} h ON h.team_id = m.team_id AND h.enabled "
            "WHERE n.id > %s AND n.id <= %s",
            [after_id, up_to_id],
        )
        user_ids = [row[0] for row in cursor.fetchall()]
    pairs = [(u, k) for u, kinds in wanted(user_ids, Channel.CHAT).items() for k in kinds]
    if not pairs:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(
            f"""INSERT INTO {WebhookDelivery._meta.db_table}
                (team_id, kind, key, day, title, body, url, status, attempts, next_attempt_at,
                 last_error, created_at)
            SELECT DISTINCT ON (m.team_id, n.kind, n.key, n.day)
                   m.team_id, n.kind, n.key, n.day, n.title, n.body, n.url, %s, 0, now(), '',
                   now()
            FROM {Notification._meta.db_table} n
            JOIN unnest(%s::bigint[], %s::text[]) AS w(user_id, kind)
              ON w.user_id = n.user_id AND w.kind = n.kind
            JOIN ({member_sql}) m ON m.user_id = n.user_id
            JOIN {TeamWebhook._meta.db_table} h ON h.team_id = m.team_id AND h.enabled
            WHERE n.id > %s AND n.id <= %s
            ORDER BY m.team_id, n.kind, n.key, n.day, n.id
            ON CONFLICT (team_id, kind, key, day) DO NOTHING""",  # nosec B608 # identifiers from code, values as parameters
            [
                DeliveryStatus.PENDING,
                [p[0] for p in pairs],
                [p[1] for p in pairs],
                after_id,
                up_to_id,
            ],
        )
        return max(cursor.rowcount, 0)


def webhook_backoff(attempts: int, retry_after: float | None = None) -> dt.timedelta:
    """1, 2, 4, 8, 16 minutes (jittered, 20%), or what a 429 asked for if longer."""
    seconds = 60 * 2 ** max(attempts - 1, 0) * random.uniform(0.8, 1.0)  # nosec B311 # jitter, not security
    return dt.timedelta(seconds=max(seconds, retry_after or 0))


def webhook_deliveries_send(*, limit: int = WEBHOOK_BATCH) -> dict[str, int]:
    """Post the due deliveries, each in its own short transaction (row locked, skipped by
    a concurrent sender). A transient failure waits its backoff; after
    WEBHOOK_MAX_ATTEMPTS, or a refusal (404: the webhook was removed), it is given up and
    the team's webhook shows the error. Never raises for a failed post."""
    counts = {"sent": 0, "retrying": 0, "failed": 0}
    for _ in range(limit):
        with transaction.atomic():
            delivery = (
                WebhookDelivery.objects.select_for_update(skip_locked=True)
                .filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=timezone.now())
                .order_by("next_attempt_at", "id")
                .first()
            )
            if delivery is None:
                break
            counts[_deliver(delivery)] += 1
    return counts


def _deliver(delivery: WebhookDelivery) -> str:
    webhook = TeamWebhook.objects.filter(team_id=delivery.team_id, enabled=True).first()
    url = secrets.decrypt(webhook.url_encrypted) if webhook else None
    delivery.attempts += 1
    fields = ["attempts", "status", "last_error", "next_attempt_at", "sent_at"]
    if webhook is None or url is None:
        delivery.status = DeliveryStatus.FAILED
        delivery.last_error = (
            "The team has no webhook any more."
            if webhook is None
            else "The stored webhook URL cannot be decrypted (SECRET_KEY changed): save it again."
        )
        delivery.save(update_fields=fields)
        return "failed"
    message = webhooks.payload(
        webhook.service,
        title=delivery.title,
        body=delivery.body,
        url=absolute(delivery.url) if delivery.url else "",
    )
    try:
        webhooks.post(url, message)
    except webhooks.WebhookError as exc:
        delivery.last_error = exc.message[:500]
        webhook.last_error = exc.message[:500]
        webhook.save(update_fields=["last_error"])
        if exc.transient and delivery.attempts < WEBHOOK_MAX_ATTEMPTS:
            delivery.next_attempt_at = timezone.now() + webhook_backoff(
                delivery.attempts, exc.retry_after
            )
            delivery.save(update_fields=fields)
            return "retrying"
        delivery.status = DeliveryStatus.FAILED
        delivery.save(update_fields=fields)
        return "failed"
    delivery.status = DeliveryStatus.SENT
    delivery.sent_at = timezone.now()
    delivery.last_error = ""
    delivery.save(update_fields=fields)
    TeamWebhook.objects.filter(pk=webhook.pk).update(last_sent_at=delivery.sent_at, last_error="")
    return "sent"
