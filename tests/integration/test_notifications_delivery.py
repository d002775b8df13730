"""Delivering notifications: the bell and page (own rows only, fixed queries, CSRF, htmx),
preferences respected in every channel, the daily digest sent once, and the team chat
webhook posting to the loopback fake with retries, its URL never stored or logged plain."""

from __future__ import annotations

import datetime as dt
import logging

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from notifications import services
from notifications.models import (
    DeliveryStatus,
    DigestStatus,
    Kind,
    Notification,
    NotificationDigest,
    TeamWebhook,
    WebhookDelivery,
)
from notifications.tasks import chat_fanout, digest_send
from portfolio.models import Account
from tests.factories import AccountFactory, UserFactory
from tests.fakes.webhooks import fake_webhook  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db


def notify(user, *, kind=Kind.HEALTH_AT_RISK, n=1, account=None, **fields):
    now = timezone.now()
    rows = [
        Notification(
            user=user,
            kind=kind,
            key=f"account:{(account.pk if account else 0)}-{i}-{kind}",
            day=timezone.localdate(),
            account=account,
            title=fields.get("title", f"Account {i} turned Red"),
            body=fields.get("body", "Health Green → Red"),
            url=fields.get("url", "/"),
            created_at=now - dt.timedelta(minutes=i),
        )
        for i in range(n)
    ]
    return Notification.objects.bulk_create(rows)


def test_the_bell_counts_only_my_unread_in_a_fixed_number_of_queries(
    client, tam, django_assert_num_queries
):
    other = UserFactory(role="TAM")
    client.force_login(tam)

    notify(tam, n=2)
    notify(other, n=5)
    with django_assert_num_queries(4):  # session, user with its groups, preferences, count
        small = client.get(reverse("notifications:bell"))
    notify(tam, kind=Kind.PRIORITY_CHANGED, n=150)
    with django_assert_num_queries(4):
        large = client.get(reverse("notifications:bell"))

    assert '"bell-count">2<span' in small.content.decode()
    assert '"bell-count">99+<span' in large.content.decode()


def test_the_page_lists_only_my_own_bounded_and_htmx_gets_the_partial(client, tam):
    other = UserFactory(role="TAM")
    notify(tam, n=60, title="Mine")
    notify(other, n=3, title="Not mine")
    client.force_login(tam)

    page = client.get(reverse("notifications:list"))
    assert page.status_code == 200
    body = page.content.decode()
    assert body.count('class="notification unread"') == 50  # a page is bounded
    assert "Not mine" not in body
    assert "Older" in body

    partial = client.get(reverse("notifications:list") + "?page=2", headers={"HX-Request": "true"})
    assert "<html" not in partial.content.decode()
    assert partial.content.decode().count('class="notification unread"') == 10


def test_the_page_costs_the_same_queries_at_two_sizes(client, tam):
    client.force_login(tam)
    notify(tam, n=3)
    client.get(reverse("notifications:list"))
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as small:
        client.get(reverse("notifications:list"))
    notify(tam, kind=Kind.TRIAGE_ISSUE, n=80)
    with CaptureQueriesContext(connection) as large:
        client.get(reverse("notifications:list"))
    assert len(small) == len(large)


def test_mark_read_is_mine_only_and_needs_csrf(tam):
    other = UserFactory(role="TAM")
    (mine,) = notify(tam)
    (theirs,) = notify(other)
    client = Client(enforce_csrf_checks=True)
    client.force_login(tam)

    assert client.post(reverse("notifications:read", args=[mine.pk])).status_code == 403

    client.get(reverse("notifications:list"))  # sets the CSRF cookie
    token = client.cookies["csrftoken"].value
    headers = {"X-CSRFToken": token, "HX-Request": "true"}
    assert (
        client.post(reverse("notifications:read", args=[theirs.pk]), headers=headers).status_code
        == 404
    )
    response = client.post(reverse("notifications:read", args=[mine.pk]), headers=headers)
    assert response.status_code == 200
    assert "notifications-changed" in response.headers["HX-Trigger"]
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert mine.read_at is not None and theirs.read_at is None


def test_open_marks_read_and_goes_to_the_place_to_act(client, tam):
    account = AccountFactory(tam=tam)
    (note,) = notify(tam, account=account, url=f"/account/{account.salesforce_id}/")
    client.force_login(tam)
    response = client.post(reverse("notifications:open", args=[note.pk]))
    assert response.status_code == 302
    assert response["Location"] == f"/account/{account.salesforce_id}/"
    note.refresh_from_db()
    assert note.read_at is not None


def test_mark_all_read(client, tam):
    other = UserFactory(role="TAM")
    notify(tam, n=4)
    notify(other, n=2)
    client.force_login(tam)
    response = client.post(reverse("notifications:read_all"), headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert not Notification.objects.filter(user=tam, read_at__isnull=True).exists()
    assert Notification.objects.filter(user=other, read_at__isnull=True).count() == 2


def test_preferences_start_from_the_role_and_switch_the_bell_off(client, tam):
    notify(tam, kind=Kind.PRIORITY_CHANGED, n=2)
    notify(tam, kind=Kind.SYNC_PROBLEM, n=1)  # not a TAM default: hidden
    client.force_login(tam)
    page = client.get(reverse("notifications:preferences")).content.decode()
    assert 'id="pref-priority_changed-in_app" checked' in page
    assert 'id="pref-sync_problem-in_app" aria-label' in page  # not ticked
    assert '"bell-count">2<span' in client.get(reverse("notifications:bell")).content.decode()

    # Untick "priority changed" in the app, keep everything else the TAM has.
    ticked = ["health_at_risk:in_app", "priority_changed:email", "triage_issue:in_app"]
    response = client.post(reverse("notifications:preferences"), {"enabled": ticked})
    assert response.status_code == 302
    assert 'class="bell-count"' not in client.get(reverse("notifications:bell")).content.decode()

    bad = client.post(reverse("notifications:preferences"), {"enabled": ["nonsense:in_app"]})
    assert bad.status_code == 400
    assert "Unknown notification" in bad.content.decode()


def test_the_digest_is_sent_once_a_day_with_text_html_and_unsubscribe(tam, settings):
    settings.PORTFOLIO_BASE_URL = "https://portfolio.example.com"
    notify(tam, n=3)
    notify(tam, kind=Kind.SYNC_PROBLEM)  # not wanted by e-mail: not in it
    day = timezone.localdate().isoformat()

    assert digest_send.apply(args=[tam.pk, day]).get() == "sent 3"
    assert digest_send.apply(args=[tam.pk, day]).get() == "already sent"  # a retry

    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [tam.email]
    assert "Account 0 turned Red" in message.body
    html = message.alternatives[0][0]
    assert message.alternatives[0][1] == "text/html"
    assert "https://portfolio.example.com/" in html
    unsubscribe = message.extra_headers["List-Unsubscribe"].strip("<>")
    assert unsubscribe.startswith("https://portfolio.example.com/notifications/unsubscribe/")
    assert unsubscribe in message.body
    digest = NotificationDigest.objects.get()
    assert (digest.status, digest.notification_count) == (DigestStatus.SENT, 3)

    # The next day: nothing new, so no mail.
    tomorrow = (timezone.localdate() + dt.timedelta(days=1)).isoformat()
    assert digest_send.apply(args=[tam.pk, tomorrow]).get() == "nothing to send"
    assert len(mail.outbox) == 1


def test_the_unsubscribe_link_works_signed_out_and_switches_email_off(tam):
    anonymous = Client()
    url = reverse("notifications:unsubscribe", args=[services.unsubscribe_token(tam)])
    assert "Stop the daily digest" in anonymous.get(url).content.decode()
    assert anonymous.post(url).status_code == 200
    notify(tam, n=2)
    assert services.digest_candidates() == []

    forged = reverse("notifications:unsubscribe", args=["x" + services.unsubscribe_token(tam)])
    assert anonymous.get(forged).status_code == 400


def test_email_preference_off_means_no_digest(tam):
    notify(tam, kind=Kind.CADENCE_OVERDUE, n=2)
    services.notification_preferences_save(user=tam, enabled=[("cadence_overdue", "in_app")])
    assert services.digest_send(user_id=tam.pk, day=timezone.localdate()) == "nothing to send"
    assert mail.outbox == []


def webhook_for(team, url) -> TeamWebhook:
    return services.team_webhook_set(team_id=team.pk, service="slack", url=url, user=None)


def test_a_team_webhook_posts_once_for_the_team_and_retries_with_backoff(
    tam,
    manager,
    team,
    fake_webhook,  # noqa: F811
    caplog,
):
    webhook = webhook_for(team, fake_webhook.url)
    assert fake_webhook.url not in webhook.url_encrypted  # encrypted at rest
    assert "s3cr3t" not in webhook.url_hint
    account = AccountFactory(tam=tam)
    chat_fanout()  # the cursor starts here
    for user in (tam, manager):  # both care about one account: one post
        Notification.objects.create(
            user=user, kind=Kind.HEALTH_AT_RISK, key=f"account:{account.pk}",
            day=timezone.localdate(), account=account, title="Acme turned Red",
            body="Health Green → Red", url=f"/account/{account.salesforce_id}/",
        )  # fmt: skip
    assert chat_fanout() == 1
    assert chat_fanout() == 0  # idempotent

    fake_webhook.fail_next(500)
    with caplog.at_level(logging.DEBUG):
        assert services.webhook_deliveries_send() == {"sent": 0, "retrying": 1, "failed": 0}
    delivery = WebhookDelivery.objects.get()
    assert delivery.next_attempt_at > timezone.now() + dt.timedelta(seconds=40)
    assert "s3cr3t" not in delivery.last_error and "127.0.0.1" in delivery.last_error
    assert "s3cr3t" not in caplog.text

    # Not due yet: nothing posted; once due, it goes.
    assert services.webhook_deliveries_send() == {"sent": 0, "retrying": 0, "failed": 0}
    WebhookDelivery.objects.update(next_attempt_at=timezone.now())
    assert services.webhook_deliveries_send()["sent"] == 1
    path, body = fake_webhook.posts[0]
    assert path == "/services/T000/B000/s3cr3t-w3bh00k-t0k3n"
    assert (
        "Acme turned Red" in body["text"] and f"/account/{account.salesforce_id}/" in body["text"]
    )
    assert WebhookDelivery.objects.get().status == DeliveryStatus.SENT


def test_a_removed_webhook_is_given_up_and_chat_preferences_are_respected(
    tam,
    team,
    fake_webhook,  # noqa: F811
):
    webhook_for(team, fake_webhook.url)
    chat_fanout()
    # The TAM does not want priority changes in chat (the default) but health: yes.
    notify(tam, kind=Kind.PRIORITY_CHANGED)
    notify(tam, kind=Kind.HEALTH_AT_RISK)
    assert chat_fanout() == 1
    assert WebhookDelivery.objects.get().kind == Kind.HEALTH_AT_RISK

    fake_webhook.fail_next(404)
    assert services.webhook_deliveries_send()["failed"] == 1
    assert "HTTP 404" in TeamWebhook.objects.get().last_error
    assert fake_webhook.posts == []


def test_a_webhook_url_must_be_https():
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        services.webhook_url_validate("http://hooks.slack.com/services/x")
    services.webhook_url_validate("https://hooks.slack.com/services/x")


def test_teams_gets_an_adaptive_card():
    from integrations.webhooks import payload

    message = payload("teams", title="Acme turned Red", body="why", url="https://p/x")
    card = message["attachments"][0]["content"]
    assert card["type"] == "AdaptiveCard"
    assert card["actions"][0]["url"] == "https://p/x"


# --- The kept count: a page shows it without a request of its own (notifications.bell) ----

LAZY = 'hx-trigger="load, notifications-changed from:body"'


@pytest.fixture
def bell_forgotten(tam):
    """The Redis of the tests outlives a test (and a run): no count kept for `tam`."""
    from notifications import bell

    bell._delete([bell.key(tam.pk)])


def _page(client) -> str:
    response = client.get(reverse("ui:home"))
    assert response.status_code == 200
    return response.content.decode()


def test_a_page_shows_the_count_the_bell_kept_without_a_query_or_a_request(
    client, tam, bell_forgotten
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    notify(tam, n=3)
    client.force_login(tam)
    first = _page(client)
    assert LAZY in first and 'id="bell-count"' not in first  # not counted yet: loads itself

    client.get(reverse("notifications:bell"))  # what the browser's htmx does next
    with CaptureQueriesContext(connection) as queries:
        second = _page(client)
    assert '"bell-count">3<span' in second
    assert LAZY not in second  # no second request for it
    assert 'hx-trigger="notifications-changed from:body"' in second  # reading still refreshes
    assert not [q for q in queries if "notifications_notification" in q["sql"]]


def test_new_notifications_and_reading_make_the_page_count_again(
    client, tam, bell_forgotten, django_capture_on_commit_callbacks
):
    from notifications.producer import notifications_produce

    first, *_ = notify(tam, n=2)
    client.force_login(tam)
    client.get(reverse("notifications:bell"))
    assert '"bell-count">2<span' in _page(client)

    # A new notification (the producer's: an account of theirs turned Red) is counted.
    account = AccountFactory(tam=tam, health="green")
    Account.objects.filter(pk=account.pk).update(health="red")
    with django_capture_on_commit_callbacks(execute=True):
        assert notifications_produce().total == 1
    assert LAZY in _page(client)  # forgotten once the producer committed: counted again
    assert '"bell-count">3<span' in client.get(reverse("notifications:bell")).content.decode()
    assert '"bell-count">3<span' in _page(client)

    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("notifications:read", args=[first.pk]))
    assert LAZY in _page(client)
    assert '"bell-count">2<span' in client.get(reverse("notifications:bell")).content.decode()

    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("notifications:read_all"))
    assert LAZY in _page(client)
    assert 'id="bell-count"' not in client.get(reverse("notifications:bell")).content.decode()


def test_with_redis_down_the_page_lets_the_bell_load(client, tam, bell_forgotten):
    from django.test import override_settings

    from tests.integration.test_page_caches import REDIS_DOWN

    notify(tam, n=2)
    client.force_login(tam)
    client.get(reverse("notifications:bell"))
    with override_settings(CACHES=REDIS_DOWN):
        assert LAZY in _page(client)
        assert '"bell-count">2<span' in client.get(reverse("notifications:bell")).content.decode()
