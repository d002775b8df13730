"""The portfolio pages in Debian's Chromium: a TAM filters their table (htmx, URL pushed),
opens an account, reads it and logs an activity (error kept, then saved); a manager opens
the team view and drills down. Screenshots go to tests/browser/screenshots/."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from tests.factories import AccountFactory, ActivityFactory, OpportunityFactory, UserFactory

pytestmark = pytest.mark.browser


@pytest.fixture
def book(tam):
    today = timezone.localdate()
    accounts = []
    for i, (name, priority, health, arr) in enumerate(
        [
            ("Acme Corp", 1, "green", 1_200_000),
            ("Globex", 1, "red", 800_000),
            ("Initech", 2, "yellow", 450_000),
            ("Umbrella", 2, "amber", 300_000),
            ("Hooli", 2, "green", 250_000),
            ("Stark Industries", 1, "yellow", 600_000),
        ]
    ):
        accounts.append(
            AccountFactory(
                tam=tam,
                name=name,
                priority=priority,
                health=health,
                arr=Decimal(arr),
                renewal_date=today + dt.timedelta(days=25 + 40 * i),
                synced_at=timezone.now() - dt.timedelta(minutes=30),
            )
        )
    ActivityFactory(
        account=accounts[0],
        kind="cadence_call",
        subject="Monthly cadence",
        occurred_at=timezone.now() - dt.timedelta(days=5),
    )
    OpportunityFactory(account=accounts[0], name="Acme Ultimate up-tier", type="Up-tier")
    return accounts


def test_tam_filters_the_table_and_logs_an_activity(
    page, login, tam, book, screenshot, a11y_problems
):
    login(page, tam)
    page.get_by_role("heading", name="My portfolio").wait_for()
    assert a11y_problems(page) == []
    assert page.locator("#accounts-table tbody tr").count() == 6
    screenshot(page, "01-dashboard")

    page.get_by_label("Priority", exact=True).select_option("1")
    page.wait_for_url("**/?priority=1*")
    page.locator("#accounts-count", has_text="3 accounts").wait_for()
    names = page.locator("#accounts-table tbody th").all_inner_texts()
    assert sorted(names) == ["Acme Corp", "Globex", "Stark Industries"]
    page.get_by_label("Search").fill("glob")
    page.locator("#accounts-count", has_text="1 account").wait_for()
    assert "q=glob" in page.url
    screenshot(page, "02-dashboard-filtered")

    # The pushed URL is bookmarkable: loading it afresh shows the same rows.
    page.goto(page.url)
    assert page.locator("#accounts-table tbody th").all_inner_texts() == ["Globex"]

    page.goto("/")
    page.get_by_role("link", name="Acme Corp").click()
    page.get_by_role("heading", name="Acme Corp", level=1).wait_for()
    assert page.get_by_text("Synced from Salesforce").is_visible()
    assert page.get_by_text("Acme Ultimate up-tier").is_visible()
    assert a11y_problems(page) == []

    future = (timezone.localtime() + dt.timedelta(days=10)).strftime("%Y-%m-%dT%H:%M")
    form = page.locator("form.activity-form")
    form.get_by_label("Kind").select_option("email")
    form.get_by_label("When").fill(future)
    form.get_by_label("Subject").fill("Renewal follow-up")
    form.get_by_label("Notes").fill("Notes that must survive an error")
    form.get_by_role("button", name="Log activity").click()
    page.get_by_text("cannot be logged in the future").wait_for()
    form = page.locator("form.activity-form")  # swapped in by htmx
    assert form.get_by_label("Subject").input_value() == "Renewal follow-up"
    assert form.get_by_label("Notes").input_value() == "Notes that must survive an error"
    assert form.get_by_label("Kind").input_value() == "email"
    screenshot(page, "03-account-activity-error")

    form.get_by_label("When").fill(timezone.localtime().strftime("%Y-%m-%dT%H:%M"))
    form.get_by_role("button", name="Log activity").click()
    page.get_by_text("Activity logged.").wait_for()
    assert page.locator(".timeline li", has_text="Renewal follow-up").count() == 1
    screenshot(page, "04-account")
    assert page.console_errors == [], "\n".join(page.console_errors)


def test_tam_reads_the_trace_and_sets_a_health_colour(page, login, tam, screenshot):
    from prioritization.models import PriorityDecision, ReviewCause
    from prioritization.services import priorities_reevaluate

    account = AccountFactory(
        tam=tam, name="Initrode", churn_risk=True, health="green", arr=Decimal(900_000)
    )
    priorities_reevaluate(cause=ReviewCause.MANUAL, account_ids=[account.pk])
    trace = PriorityDecision.objects.get(account=account).trace
    rules = [step["rule"] for step in trace]
    assert rules[rules.index("churn_risk") :] == ["churn_risk", "p2_exception"]
    login(page, tam)
    page.get_by_role("link", name="Initrode").click()
    page.get_by_role("heading", name="Initrode", level=1).wait_for()
    # The US Enterprise flowchart, with the path to "At risk of contraction or churn".
    chart = page.get_by_role("img", name="How this priority was decided")
    assert chart.is_visible()
    # Six "No" edges down the questions, "Yes" into Priority 1, then the dotted edge to the
    # P2 exception check (answered No).
    assert page.locator(".chart-flowchart .fc-edge.taken").count() == 8
    desc = page.locator(".chart-flowchart desc").text_content()
    assert "At risk of contraction or churn (yes)" in desc
    # The engagement panel arrives over htmx right after the page.
    page.locator("#eng-panel").wait_for()
    assert page.locator("#eng-panel .eng-section").count() >= 5
    page.get_by_text("The same path in words").click()
    decisive = page.locator('.checklist li[data-rule="churn_risk"]')
    assert "Yes" in decisive.inner_text()
    screenshot(page, "08-account-trace")
    screenshot(page, "08b-priority-panel", locator=page.locator("section.priority-panel"))

    header_badge = page.locator(".account-head #account-health-badge")
    assert header_badge.inner_text() == "Green"
    panel = page.locator(".health-panel")
    panel.get_by_label("Health colour").select_option("amber")
    panel.get_by_label("Reason (required when you differ from the suggestion)").fill(
        "Champion left last week; renewal at risk"
    )
    panel.get_by_role("button", name="Set health colour").click()
    page.get_by_text("Health colour saved.").wait_for()
    assert page.locator(".health-panel h2 .badge", has_text="Amber").is_visible()
    # The header badge follows without a reload (out-of-band swap of the htmx response).
    expect(header_badge).to_have_text("Amber")
    # htmx settles the swapped element's attributes a moment after its content: wait for it.
    expect(header_badge).to_have_class(re.compile(r"\bhealth-amber\b"))
    screenshot(page, "09-account-health-set")
    account.refresh_from_db()
    assert account.health == "amber"
    assert page.console_errors == [], "\n".join(page.console_errors)


def test_manager_approves_an_exception_from_the_team_view(
    page, login, manager, tam, team, screenshot
):
    from prioritization.models import PriorityException
    from prioritization.services import priority_exception_request

    account = AccountFactory(tam=tam, name="Vandelay Industries", priority=2)
    exception = priority_exception_request(
        account=account,
        requested_by=tam,
        requested_priority=1,
        reason="Large strategic customer with no LAM: needs weekly attention",
    )
    login(page, manager)
    page.get_by_role("link", name="My team").click()
    row = page.locator(f"#exception-row-{exception.pk}")
    assert "Vandelay Industries" in row.inner_text()
    screenshot(page, "10-team-pending-exception")
    row.get_by_role("button", name="Approve").click()
    page.locator(f"#exception-row-{exception.pk}", has_text="Approved").wait_for()
    screenshot(page, "11-team-exception-approved")
    exception.refresh_from_db()
    assert exception.status == "approved"
    assert PriorityException.objects.get(pk=exception.pk).decided_by == manager
    assert page.console_errors == [], "\n".join(page.console_errors)


def test_manager_team_view_and_drill_down(
    page, login, manager, tam, team, book, screenshot, a11y_problems
):
    other = UserFactory(role="TAM", first_name="Bea", last_name="Second")
    team.tams.add(other)
    AccountFactory(
        tam=other, name="Wayne Enterprises", priority=1, health="red", arr=Decimal(3_900_000)
    )
    login(page, manager)
    page.get_by_role("link", name="My team").click()
    page.get_by_role("heading", name="My team").wait_for()
    assert page.locator(".team-table tbody tr").count() == 2
    assert a11y_problems(page) == []
    screenshot(page, "05-team")
    page.get_by_role("link", name=tam.get_full_name()).click()
    page.get_by_role("heading", name=f"{tam.get_full_name()}'s portfolio").wait_for()
    assert page.locator("#accounts-table tbody tr").count() == 6
    assert page.console_errors == [], "\n".join(page.console_errors)


def test_pages_fit_a_tablet(page, login, tam, book, screenshot):
    page.set_viewport_size({"width": 800, "height": 1100})
    login(page, tam)
    # Nothing but the wide table scrolls sideways.
    assert page.evaluate("document.documentElement.scrollWidth") <= 800
    screenshot(page, "06-dashboard-tablet")
    page.get_by_role("link", name="Globex").click()
    page.get_by_role("heading", name="Globex", level=1).wait_for()
    assert page.evaluate("document.documentElement.scrollWidth") <= 800
    screenshot(page, "07-account-tablet")
