"""Customer e-mails: admins' versioned templates, and the outbox a TAM queues into (task
`engagement.email_deliver` sends them and logs them on the timeline)."""

from __future__ import annotations

import datetime as dt
import smtplib

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage
from django.db import transaction
from django.utils import timezone

from engagement import tasks
from engagement.emails import template_syntax_error
from engagement.models import (
    EmailTemplate,
    EmailTemplateVersion,
    OutboundEmail,
    OutboundEmailStatus,
)
from integrations.enqueue import enqueue_on_commit
from portfolio.models import Account, ActivityKind, Contact
from portfolio.services import activity_log

EMAIL_TEMPLATE_FIELDS = ("name", "origin", "source", "subject", "body")


@transaction.atomic
def email_template_save(*, template: EmailTemplate, user: User | None) -> EmailTemplate:
    """Save an admin's edit of an email template as its next version.

    The template row holds the latest version (the panel's picker uses it); every saved
    version, the first (seeded) one included, stays in `EmailTemplateVersion` with who
    saved it and when. A save that changes none of the text keeps the version."""
    errors = {
        name: f"Not a valid template: {error}"
        for name in ("subject", "body")
        if (error := template_syntax_error(getattr(template, name)))
    }
    if errors:
        raise ValidationError(errors)
    now = timezone.now()
    if template.pk is None:
        template.version = 1
    else:
        current = EmailTemplate.objects.select_for_update().get(pk=template.pk)
        unchanged = all(
            getattr(current, f) == getattr(template, f) for f in EMAIL_TEMPLATE_FIELDS
        ) and (template.key == current.key and template.position == current.position)
        if unchanged:
            return current
        latest = current.versions.order_by("-version").values_list("version", flat=True).first()
        template.version = max(current.version, latest or 0) + 1
    template.updated_by = user
    template.updated_at = now
    template.save()
    EmailTemplateVersion.objects.create(
        template=template,
        version=template.version,
        saved_by=user,
        saved_at=now,
        **{f: getattr(template, f) for f in EMAIL_TEMPLATE_FIELDS},
    )
    return template


def email_queue(
    *,
    account: Account,
    user: User,
    to: list[str],
    subject: str,
    body: str,
    cc: list[str] | None = None,
) -> OutboundEmail:
    """Queue an e-mail to the customer; the task `engagement.email_deliver` sends it (after
    commit) and logs it on the timeline.

    Only to the account's contacts (to and cc), and at most `EMAIL_RATE_PER_USER_PER_HOUR`
    a user an hour: a TAM's mailbox is not a relay. Raises ValidationError naming the field."""
    recipients = {"to": [a.strip() for a in to if a.strip()], "cc": cc or []}
    if not recipients["to"]:
        raise ValidationError({"to": "Name at least one recipient."})
    known = {
        e.lower()
        for e in Contact.objects.filter(account=account)
        .exclude(email="")
        .values_list("email", flat=True)
    }
    for field, addresses in recipients.items():
        strangers = [a for a in addresses if a.lower() not in known]
        if strangers:
            raise ValidationError(
                {
                    field: f"{', '.join(strangers)}: not a contact of {account.name}. Add the "
                    "person as a contact of the account first."
                }
            )
    limit = settings.EMAIL_RATE_PER_USER_PER_HOUR
    recent = OutboundEmail.objects.filter(
        user=user, created_at__gte=timezone.now() - dt.timedelta(hours=1)
    ).count()
    if recent >= limit:
        raise ValidationError(
            {
                "to": f"You sent {recent} e-mails in the last hour (the limit is {limit}); "
                "try again later."
            }
        )
    email = OutboundEmail.objects.create(
        account=account,
        user=user,
        to=recipients["to"],
        cc=recipients["cc"],
        reply_to=[user.email] if getattr(user, "email", "") else [],
        subject=subject,
        body=body,
    )
    enqueue_on_commit(tasks.email_deliver, outbox_id=email.pk)
    return email


def email_deliver(*, outbox_id: int) -> OutboundEmail:
    """Send one queued e-mail and log it on the timeline (an `email` activity), in the
    transaction that marks it sent; safe to run twice (a sent one is left alone). SMTP
    errors are recorded and re-raised for the task's retries."""
    with transaction.atomic():
        email = (
            OutboundEmail.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("account", "user")
            .filter(pk=outbox_id, status=OutboundEmailStatus.QUEUED)
            .first()
        )
        if email is None:
            return OutboundEmail.objects.get(pk=outbox_id)
        email.attempts += 1
        message = EmailMessage(
            subject=email.subject,
            body=email.body,
            to=email.to,
            cc=email.cc,
            reply_to=email.reply_to,
        )
        failure: OSError | None
        try:
            message.send(fail_silently=False)
        except (smtplib.SMTPException, OSError) as exc:
            failure = exc
            email.error = f"{type(exc).__name__}: {exc}"[:500]
            email.save(update_fields=["attempts", "error"])
        else:
            failure = None
            email.status = OutboundEmailStatus.SENT
            email.sent_at = timezone.now()
            email.error = ""
            email.save(update_fields=["attempts", "status", "sent_at", "error"])
            activity_log(
                account=email.account,
                user=email.user,
                kind=ActivityKind.EMAIL,
                occurred_at=email.sent_at,
                subject=email.subject,
                body=f"To: {', '.join(email.to)}\n\n{email.body}",
            )
    if failure is not None:
        raise failure  # after the commit: the try and its error stay recorded
    return email


def email_give_up(*, outbox_id: int) -> None:
    """After the task's last retry: the e-mail is marked failed with its last error."""
    OutboundEmail.objects.filter(pk=outbox_id, status=OutboundEmailStatus.QUEUED).update(
        status=OutboundEmailStatus.FAILED
    )
