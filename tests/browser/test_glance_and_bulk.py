"""Issue 15 in Debian's Chromium: a manager's bulk reassignment from the accounts table
(select the page, the count, confirm-free for a few accounts), the account page at a
glance (summary, table of contents) at phone width with long text wrapped, and the
character counter on a reason."""

from __future__ import annotations

from decimal import Decimal

import pytest
from playwright.sync_api import expect

from portfolio.models import Account
from tests.factories import AccountFactory, ActivityFactory, UserFactory

pytestmark = pytest.mark.browser


def test_manager_reassigns_ticked_accounts(page, login, manager, tam, team, screenshot):
    other = UserFactory(role="TAM", first_name="Otto", last_name="Other")
    team.tams.add(other)
    for i, name in enumerate(["Acme", "Globex", "Initech"]):
        AccountFactory(tam=tam, name=name, arr=Decimal(100_000 * (i + 1)))
    login(page, manager)
    page.wait_for_load_state("networkidle")
    table = page.locator("#accounts-table")
    select_page = table.get_by_label("Select every account on this page")
    expect(select_page).to_be_visible()  # shown by static/js/forms.js
    table.get_by_label("Select Acme").check()
    table.get_by_label("Select Globex").check()
    expect(page.locator("[data-bulk-count]")).to_have_text("2 selected on this page")
    page.get_by_label("New TAM").select_option(label="Otto Other")
    screenshot(page, "bulk-bar", locator=page.locator("#bulk-form"))
    page.get_by_role("button", name="Reassign TAM").click()
    expect(page.locator(".messages")).to_contain_text("2 accounts reassigned to Otto Other")
    assert set(Account.objects.filter(tam=other).values_list("name", flat=True)) == {
        "Acme",
        "Globex",
    }
    # Select the whole page, then untick one: the header box shows the mixed state.
    select_page = page.locator("#accounts-table").get_by_label("Select every account on this page")
    select_page.check()
    expect(page.locator("[data-bulk-count]")).to_have_text("3 selected on this page")
    page.locator("#accounts-table").get_by_label("Select Initech").uncheck()
    assert select_page.evaluate("el => el.indeterminate")
    assert page.console_errors == []


def test_account_page_at_a_glance_on_a_phone(page, login, tam, screenshot):
    account = AccountFactory(tam=tam, name="Acme", priority=1, health="amber")
    ActivityFactory(account=account, kind="email", subject="Plan", body="x" * 9000)
    page.set_viewport_size({"width": 390, "height": 800})
    login(page, tam)
    page.goto(f"/account/{account.salesforce_id}/")
    page.wait_for_load_state("networkidle")
    expect(page.locator(".glance-summary")).to_contain_text("Last contact")
    expect(page.locator("#glance-last-contact")).to_contain_text("Email")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page is {width}px wide at 390px"
    page.locator(".toc").get_by_role("link", name="Priority").click()
    assert page.url.endswith("#priority-h")
    reason = page.locator("#id_exception_reason")
    reason.fill("word " * 10)
    expect(page.locator("#id_exception_reason-counter")).to_have_text("50 / 2000 characters")
    screenshot(page, "account-glance-390")
    assert page.console_errors == []
