"""The workspace in Debian's Chromium: the inbox (done, snooze with a date), the global
search (press `/`, type, see results, go) and saved views of the accounts table (filter,
pick columns, save, share the URL, open again). No console errors (the CSP holds: the
search's script is a static file)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from tests.factories import AccountFactory, ActivityFactory, ContactFactory
from workspace.models import InboxItemState, SavedView

pytestmark = pytest.mark.browser


@pytest.fixture
def book(tam):
    accounts = [
        AccountFactory(tam=tam, name=name, priority=priority, health=health, arr=Decimal(arr))
        for name, priority, health, arr in [
            ("Acme Corp", 1, "green", 1_200_000),
            ("Globex", 1, "red", 800_000),
            ("Initech", 2, "amber", 450_000),
        ]
    ]
    # Acme had its call: only Globex and Initech owe one.
    ActivityFactory(account=accounts[0], kind="cadence_call", occurred_at=timezone.now())
    ContactFactory(account=accounts[1], name="Hank Scorpio")
    return accounts


def test_inbox_done_and_snooze(page, login, tam, book, screenshot, a11y_problems):
    login(page, tam)
    page.get_by_role("link", name="Inbox").click()
    page.get_by_role("heading", name="Inbox", level=1).wait_for()
    assert a11y_problems(page) == []
    items = page.locator(".inbox-item")
    expect(page.locator(".inbox-title", has_text="Cadence call with Globex")).to_be_visible()
    expect(page.locator(".inbox-title", has_text="Cadence call with Initech")).to_be_visible()
    before = items.count()
    screenshot(page, "workspace-01-inbox")

    globex = items.filter(has_text="Cadence call with Globex")
    globex.get_by_role("button", name="Done").click()
    expect(page.locator(".inbox-title", has_text="Cadence call with Globex")).to_have_count(0)
    expect(items).to_have_count(before - 1)

    initech = items.filter(has_text="Cadence call with Initech")
    # A date in the past is refused next to the item, which stays.
    initech.get_by_label("Snooze until").fill(timezone.localdate().isoformat())
    initech.get_by_role("button", name="Snooze").click()
    expect(initech.get_by_text("Snooze to a day after today.")).to_be_visible()
    later = timezone.localdate() + dt.timedelta(days=7)
    initech = items.filter(has_text="Cadence call with Initech")
    initech.get_by_label("Snooze until").fill(later.isoformat())
    initech.get_by_role("button", name="Snooze").click()
    expect(page.locator(".inbox-title", has_text="Cadence call with Initech")).to_have_count(0)
    screenshot(page, "workspace-02-inbox-after")
    assert InboxItemState.objects.filter(user=tam, snoozed_until=later).count() == 1
    # Still gone after a reload: stored per user.
    page.reload()
    expect(page.locator(".inbox-title", has_text="Cadence call with")).to_have_count(0)
    assert page.console_errors == []


def test_search_with_the_slash_shortcut(page, login, tam, book, screenshot):
    login(page, tam)
    page.get_by_role("heading", name="My portfolio").wait_for()
    page.locator("body").click()
    page.keyboard.press("/")
    box = page.get_by_label("Find accounts, contacts, triage issues and projects")
    expect(box).to_be_focused()
    box.press_sequentially("glob", delay=30)
    results = page.locator("#global-search-results")
    expect(results.get_by_role("link", name="Globex")).to_be_visible()
    screenshot(page, "workspace-03-search")
    box.fill("")
    box.press_sequentially("hank", delay=30)
    expect(results.get_by_role("link", name="Hank Scorpio")).to_be_visible()
    box.fill("")
    box.press_sequentially("globex", delay=30)
    results.get_by_role("link", name="Globex", exact=True).click()
    page.get_by_role("heading", name="Globex", level=1).wait_for()
    # Enter without JavaScript's help goes to the results page.
    page.keyboard.press("/")
    box.fill("initech")
    box.press("Enter")
    page.wait_for_url("**/search/?q=initech")
    expect(page.locator("main").get_by_role("link", name="Initech")).to_be_visible()
    assert page.console_errors == []


def test_saved_view_end_to_end(page, login, tam, book, screenshot):
    login(page, tam)
    page.get_by_role("heading", name="My portfolio").wait_for()
    page.get_by_label("Priority", exact=True).select_option("1")
    page.wait_for_url("**/?priority=1*")
    page.locator("#accounts-count", has_text="2 accounts").wait_for()
    page.get_by_label("Segment column").uncheck()
    page.wait_for_url("**cols=*")
    expect(page.locator("#accounts-table thead").get_by_text("Segment")).to_have_count(0)
    page.get_by_label("Save this view as").fill("My P1s")
    page.get_by_role("button", name="Save view").click()
    page.get_by_role("link", name="My P1s").wait_for()
    view = SavedView.objects.get(owner=tam)
    assert "priority=1" in view.querystring and "cols=" in view.querystring
    assert "segment" not in view.querystring.split("cols=", 1)[1]
    screenshot(page, "workspace-04-saved-view")
    # Another visit: the view's link restores filters and columns.
    page.goto("/")
    page.locator("#accounts-count", has_text="3 accounts").wait_for()
    page.get_by_role("link", name="My P1s").click()
    page.locator("#accounts-count", has_text="2 accounts").wait_for()
    expect(page.locator("#accounts-table thead").get_by_text("Segment")).to_have_count(0)
    expect(page.get_by_label("Priority", exact=True)).to_have_value("1")
    assert page.console_errors == []
