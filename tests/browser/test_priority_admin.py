"""The rule-set admin in Debian's Chromium: edit a threshold, see the what-if (who moves
P1->P2 and P2->P1), confirm, and find the new version in the history; then a TAM asks for
an exception through the htmx form and the manager approves it."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from portfolio.models import Account
from prioritization.models import RuleSet
from prioritization.services import priorities_reevaluate
from tests.factories import AccountFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.browser


def test_admin_previews_the_whatif_then_saves_a_new_version(page, login, screenshot):
    admin = UserFactory(role="Admin", is_staff=True, is_superuser=True, username="rules-admin")
    tam = UserFactory(role="TAM")
    AccountFactory(tam=tam, name="Initech", stage_adoption_hours_per_week=3)
    AccountFactory(tam=tam, name="Hooli", stage_adoption_hours_per_week=3.5)
    AccountFactory(tam=tam, name="Globex", churn_risk=True)
    AccountFactory(tam=tam, name="Umbrella", infrastructure_change_hours_per_week=1.5)
    priorities_reevaluate(cause="manual")
    ruleset = RuleSet.objects.get(region_id="US-EAST", segment="enterprise")

    login(page, admin)
    page.goto(f"/admin/prioritization/ruleset/{ruleset.pk}/change/")
    expect(page.locator("h2", has_text="Version history")).to_be_visible()
    page.locator("#id_stage_adoption_hours").fill("4.0")
    page.locator("#id_infrastructure_change_hours").fill("1.0")
    page.locator("input[name=_save]").click()

    expect(page.locator("h1")).to_contain_text("Preview changes")
    expect(page.locator("#whatif-p1-to-p2")).to_have_text("2")
    expect(page.locator("#whatif-p2-to-p1")).to_have_text("1")
    expect(page.locator("#moves-p1-to-p2")).to_contain_text("Initech")
    expect(page.locator("#moves-p1-to-p2")).to_contain_text("Hooli")
    expect(page.locator("#moves-p2-to-p1")).to_contain_text("Umbrella")
    expect(page.locator("#whatif-changes")).to_contain_text("4.0")
    screenshot(page, "priority-admin-whatif")
    ruleset.refresh_from_db()
    assert ruleset.version == 1  # nothing saved before confirming

    page.get_by_role("button", name=re.compile("Confirm and save as version 2")).click()
    expect(page.locator(".messagelist")).to_contain_text("was changed successfully")
    ruleset.refresh_from_db()
    assert ruleset.version == 2
    assert float(ruleset.stage_adoption_hours) == 4.0

    page.goto(f"/admin/prioritization/ruleset/{ruleset.pk}/change/")
    history = page.locator("#versions-group")
    expect(history).to_contain_text("rules-admin")
    expect(history).to_contain_text("stage_adoption_hours: 2.0 → 4.0")
    expect(history).to_contain_text("infrastructure_change_hours: 2.0 → 1.0")
    screenshot(page, "priority-admin-versions")
    # Admin pages have no <link rel=icon>, so Chromium's /favicon.ico probe 404s; any
    # other error (a CSP violation, a script error) fails the test.
    errors = page.console_errors  # type: ignore[attr-defined]
    assert [e for e in errors if "status of 404" not in e] == []


def test_tam_requests_an_exception_and_the_manager_approves(page, login, screenshot):
    tam = UserFactory(role="TAM", username="tam-exc")
    team = TeamFactory()
    team.tams.add(tam)
    account = AccountFactory(tam=tam, name="Soylent")
    priorities_reevaluate(cause="manual")

    login(page, tam)
    page.goto(f"/priority/account/{account.salesforce_id}/")
    expect(page.locator('[data-rule="default_p2"]')).to_contain_text("Yes")
    page.get_by_label("Priority wanted").select_option("1")
    page.get_by_label("Reason").fill("short")
    page.get_by_role("button", name="Request exception").click()
    expect(page.locator(".exception-form .errors")).to_contain_text("at least 10 characters")
    expect(page.get_by_label("Reason")).to_have_value("short")  # kept after the error
    page.get_by_label("Reason").fill("Large strategic customer with no LAM")
    page.get_by_role("button", name="Request exception").click()
    expect(page.locator(".exception-box")).to_contain_text("Sent to the TAM's manager")
    screenshot(page, "priority-exception-requested")

    page.context.clear_cookies()
    login(page, team.manager)
    page.goto("/priority/exceptions/pending/")
    row = page.locator("tr", has_text="Soylent")
    row.get_by_role("button", name="Approve").click()
    expect(page.locator("tr", has_text="Soylent")).to_contain_text("Approved")
    screenshot(page, "priority-exception-approved")
    account.refresh_from_db()
    assert account.priority == 1
    assert (
        Account.objects.get(pk=account.pk).priority_decisions.first().decided_by == "p1_exception"
    )
    assert page.console_errors == []  # type: ignore[attr-defined]
