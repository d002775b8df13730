"""The engagement panel in Debian's Chromium (Playwright): htmx forms under the strict CSP,
the CSRF header, partial swaps, typed input kept on error. Screenshot for review in
tests/browser/screenshots/engagement-panel.png."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from engagement.models import Engagement, SuccessObjective
from portfolio.models import Activity
from tests.factories import AccountFactory, ContactFactory

pytestmark = pytest.mark.browser


@pytest.fixture(autouse=True)
def _migration_rows(transactional_db):
    """Put back the rows the data migrations seed (roles, regions) when a flushing test ran
    before this module. Serialized rollback does not restore them here: once Playwright's
    loop runs, `connections["default"]` is a fresh object without the serialized contents
    (seen when a real-worker test precedes these tests in one run)."""
    from django.contrib.auth.models import Group

    from portfolio.models import Region

    for name in ("TAM", "Manager", "Admin"):
        Group.objects.get_or_create(name=name)
    for code in ("US-WEST", "US-EAST", "EMEA", "APAC", "LATAM"):
        Region.objects.get_or_create(code=code, defaults={"name": code})


def test_tam_works_the_engagement_panel_in_a_browser(page, login, tam, screenshot):
    account = AccountFactory(tam=tam, name="Wayne Enterprises", priority=1, health="amber")
    ContactFactory(account=account, name="Lucius Fox", email="lucius@wayne.test")
    login(page, tam)
    page.goto(f"/engagement/account/{account.salesforce_id}/")

    checklist = page.locator("#eng-checklist")
    checklist.get_by_role("button", name="Start engagement").click()
    checklist = page.locator("#eng-checklist")
    checklist.get_by_text("Engagement started.").wait_for()
    checklist.locator("tr", has_text="PLEASE-READ").get_by_role("button", name="Mark done").click()
    page.locator("#eng-checklist tr", has_text="PLEASE-READ").get_by_text("✓").wait_for()
    engagement = Engagement.objects.get(account=account)
    assert engagement.steps.get(key="please_read").done_by == tam

    plan = page.locator("#eng-success-plan")
    plan.get_by_label("Objective").fill("Adopt GitLab CI")
    plan.get_by_role("button", name="Add", exact=True).click()
    page.locator("#eng-success-plan h3", has_text="Adopt GitLab CI").wait_for()
    # The same objective again: the error comes back with what was typed.
    page.locator("#eng-success-plan").get_by_label("Objective").fill("adopt gitlab ci")
    page.locator("#eng-success-plan").get_by_role("button", name="Add", exact=True).click()
    page.locator("#eng-success-plan").get_by_text("already has this objective").wait_for()
    assert page.locator("#eng-success-plan").get_by_label("Objective").input_value() == (
        "adopt gitlab ci"
    )
    assert SuccessObjective.objects.filter(account=account).count() == 1

    cadence = page.locator("#eng-cadence")
    cadence.get_by_label("Subject").fill("Monthly cadence")
    cadence.get_by_role("button", name="Log").click()
    page.locator("#eng-cadence").get_by_text("Logged.").wait_for()
    # The brief's open risks reload after the change (the eng-changed event).
    expect(page.locator("#eng-egroup-brief")).to_contain_text("Health is Amber")
    expect(page.locator("#eng-egroup-brief")).not_to_contain_text("Cadence call overdue")
    assert Activity.objects.filter(account=account, kind="cadence_call").count() == 1

    emails = page.locator("#eng-emails")
    emails.get_by_label("Contact").select_option(label="Lucius Fox")
    emails.get_by_role("button", name="Render template").click()
    expect(page.locator("#eng-emails textarea[name=body]")).to_have_value(
        re.compile("^Dear Lucius Fox,")
    )
    expect(page.locator("#eng-emails input[name=to]")).to_have_value("lucius@wayne.test")
    screenshot(page, "engagement-panel")
    assert page.console_errors == []


def test_the_panel_works_inside_the_account_page(page, login, tam, screenshot):
    account = AccountFactory(tam=tam, name="Cyberdyne", priority=2)
    login(page, tam)
    page.goto(f"/account/{account.salesforce_id}/")
    plan = page.locator("#eng-success-plan")
    plan.get_by_label("Objective").fill("Security scanning in every pipeline")
    plan.get_by_role("button", name="Add", exact=True).click()
    page.locator("#eng-success-plan h3", has_text="Security scanning").wait_for()
    expect(page.locator("#eng-success-plan h2")).to_contain_text("Objectives captured")
    assert page.url.endswith(f"/account/{account.salesforce_id}/")  # stayed on the page
    screenshot(page, "engagement-in-account-page")
    assert page.console_errors == []
