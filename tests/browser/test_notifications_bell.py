"""The bell in Debian's Chromium: the unread count loads after the page, the dropdown
lists the latest, "Mark read" (an htmx POST with CSRF) updates the item and the count,
"Mark all read" clears it; no console errors (CSP holds)."""

from __future__ import annotations

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from notifications.models import Kind, Notification
from tests.factories import AccountFactory

pytestmark = pytest.mark.browser


def test_the_bell_shows_the_count_and_marks_read(page, login, tam, screenshot):
    accounts = [AccountFactory(tam=tam, name=name) for name in ("Acme Corp", "Globex", "Initech")]
    for account in accounts:
        Notification.objects.create(
            user=tam,
            kind=Kind.HEALTH_AT_RISK,
            key=f"account:{account.pk}",
            day=timezone.localdate(),
            account=account,
            title=f"{account.name} turned Red",
            body="Health Green → Red",
            url=f"/account/{account.salesforce_id}/",
        )

    login(page, tam)
    count = page.locator("#bell-count")
    expect(count).to_contain_text("3")

    page.locator("#notification-bell summary").click()
    panel = page.locator("#bell-panel")
    expect(panel.get_by_text("Globex turned Red")).to_be_visible()
    screenshot(page, "notifications-01-bell-open")

    panel.get_by_role("button", name="Mark “Globex turned Red” read").click()
    expect(count).to_contain_text("2")
    globex = Notification.objects.get(title="Globex turned Red")
    expect(panel.locator(f"#notification-{globex.pk}")).not_to_have_class("notification unread")
    assert Notification.objects.filter(read_at__isnull=False).count() == 1

    panel.get_by_role("button", name="Mark all read").click()
    expect(page.locator("#bell-count")).to_have_count(0)
    assert not Notification.objects.filter(read_at__isnull=True).exists()

    # Opening one goes to the place to act.
    page.goto("/notifications/")
    page.get_by_role("button", name="Acme Corp turned Red").click()
    page.get_by_role("heading", name="Acme Corp", level=1).wait_for()
    assert page.console_errors == []  # type: ignore[attr-defined]
