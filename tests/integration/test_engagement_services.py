"""Engagement services and selectors against the real database (and the fake Salesforce for
the TAM write-back): assignment, disengagement, cadence/EBR computation, success plans,
personas, emails, demo data."""

from __future__ import annotations

import datetime as dt
from io import StringIO

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from engagement import demo, emails, forms, selectors
from engagement.models import (
    CollaborationProject,
    CustomerIssue,
    EmailTemplate,
    Engagement,
    EngagementStep,
    SuccessObjective,
)
from engagement.services import checklist, disengagement, personas, success_plan
from engagement.services.emails import email_deliver, email_queue
from portfolio.models import Account, Activity, ActivityKind, SalesforceUser
from portfolio.writeback import writeback_confirm, writeback_push
from prioritization.models import RuleSet
from tests.factories import AccountFactory, ActivityFactory, ContactFactory, UserFactory
from tests.fakes.salesforce import fake_salesforce, salesforce_ca  # noqa: F401 - fixtures

NOW = timezone.now()


def _call(account, kind, days_ago):
    return ActivityFactory(
        account=account, kind=kind, occurred_at=NOW - dt.timedelta(days=days_ago), subject=kind
    )


# --- TAM assignment and disengagement write back to Salesforce ---------------------------


def test_tam_assignment_is_written_back_to_salesforce(
    tam,
    fake_salesforce,  # noqa: F811
    django_capture_on_commit_callbacks,
):
    sf_user = fake_salesforce.add("User", Name="Tara TAM", Email=tam.email)
    SalesforceUser.objects.create(
        salesforce_id=sf_user["Id"], name="Tara TAM", email=tam.email, user=tam
    )
    record = fake_salesforce.add("Account", Name="Initech", Technical_Account_Manager__c=None)
    account = AccountFactory(salesforce_id=record["Id"], name="Initech", tam=None)
    admin = UserFactory(role="Admin", is_superuser=True)
    engagement = checklist.engagement_start(account=account, kind="upgrade", user=admin)
    assert engagement.steps.get(key="tam_assign").done_at is None

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        checklist.engagement_tam_assign(account=account, tam=tam, user=admin)
    assert len(callbacks) == 1  # the write-back task, on commit
    account.refresh_from_db()
    assert account.tam == tam
    step = engagement.steps.get(key="tam_assign")
    assert step.done_by == admin and step.done_at is not None
    assert Activity.objects.filter(account=account, subject__startswith="TAM assigned").exists()

    writeback_push(account_ids=[account.pk])
    assert (
        fake_salesforce.get("Account", record["Id"])["Technical_Account_Manager__c"]
        == (sf_user["Id"])
    )

    # Disengaging unassigns the TAM and writes that back too.
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        disengagement.disengagement_record(
            account=account,
            user=tam,
            reason="strategic_ended",
            reason_detail="Tier upgrade did not happen",
            met_with_account_executive=True,
            option_support=True,
            option_written_howto=True,
            option_features_lost="",
            option_self_serve=True,
            follow_up_summary="Support for how-to; SAL for workflow advice in writing.",
        )
    assert len(callbacks) == 1
    # Clearing a Salesforce value waits for an admin's confirmation (the brake).
    held = writeback_push(account_ids=[account.pk])
    assert held.held
    assert fake_salesforce.get("Account", record["Id"])["Technical_Account_Manager__c"]
    writeback_confirm(run_id=held.run.pk, user=admin)
    writeback_push(confirm_run=held.run)
    assert not fake_salesforce.get("Account", record["Id"])["Technical_Account_Manager__c"]
    engagement.refresh_from_db()
    assert engagement.ended_at is not None


def test_assignment_is_not_enqueued_when_salesforce_is_off(tam, settings):
    settings.SALESFORCE_ENABLED = False
    account = AccountFactory(tam=None)
    checklist.engagement_tam_assign(account=account, tam=tam, user=tam)
    account.refresh_from_db()
    assert account.tam == tam


def test_disengagement_requires_features_lost_when_downgrading(tam):
    account = AccountFactory(tam=tam)
    with pytest.raises(ValidationError) as caught:
        disengagement.disengagement_record(
            account=account,
            user=tam,
            reason="churn",
            reason_detail="",
            met_with_account_executive=True,
            option_support=True,
            option_written_howto=False,
            option_features_lost=" ",
            option_self_serve=False,
            follow_up_summary="",
        )
    assert set(caught.value.message_dict) == {"option_features_lost", "follow_up_summary"}
    account.refresh_from_db()
    assert account.tam == tam


# --- Engagement checklist ----------------------------------------------------------------


def test_engagement_start_ticks_what_is_already_true(tam):
    account = AccountFactory(tam=tam)
    CollaborationProject.objects.create(
        account=account, template="enterprise", path="x", gitlab_id=5, status="transferred"
    )
    engagement = checklist.engagement_start(account=account, kind="new_customer", user=tam)
    done = set(engagement.steps.filter(done_at__isnull=False).values_list("key", flat=True))
    assert done == {"tam_assign", "sa_create_project", "confirm_template", "move_post_sales"}
    assert engagement.stage == "post_sales"
    assert EngagementStep.objects.filter(engagement=engagement).count() == 6


# --- Cadence and EBRs --------------------------------------------------------------------


def test_expected_cadence_comes_from_the_rule_set_else_the_handbook(tam):
    account = AccountFactory(tam=tam, priority=1)
    ruleset = RuleSet.objects.get(region_id=account.region_id, segment=account.segment)
    ruleset.p1_cadence_days = 14
    ruleset.p1_ebrs_min_per_year = 2
    ruleset.save()
    expectations = selectors.expectations_for(account)
    assert expectations["cadence_days"] == 14 and expectations["ebrs_min_per_year"] == 2
    _call(account, ActivityKind.CADENCE_CALL, 20)
    assert selectors.account_engagement_panel(account)["cadence"]["status"].overdue

    RuleSet.objects.all().delete()
    expectations = selectors.expectations_for(account)
    assert expectations["cadence_days"] == 30 and expectations["cadence_source"] == (
        "handbook default"
    )
    # No rule set: the Enterprise reading, marked as one (not Commercial's "1-2").
    assert expectations["ebrs_min_per_year"] == 1
    assert expectations["ebrs_reading"].startswith("Portfolio's reading")
    assert not selectors.account_engagement_panel(account)["cadence"]["status"].overdue


def test_ebrs_held_over_the_last_12_months(tam):
    """Counted one way, as the health signal does: the last 12 months, not the calendar
    year (an EBR of December still counts in November)."""
    account = AccountFactory(tam=tam, priority=1)
    now = dt.datetime(2026, 11, 23, 12, tzinfo=dt.UTC)
    for when in (dt.datetime(2026, 3, 1, tzinfo=dt.UTC), dt.datetime(2025, 12, 1, tzinfo=dt.UTC)):
        ActivityFactory(account=account, kind=ActivityKind.EBR, occurred_at=when)
    ActivityFactory(
        account=account, kind=ActivityKind.EBR, occurred_at=dt.datetime(2025, 11, 1, tzinfo=dt.UTC)
    )
    ActivityFactory(
        account=account,
        kind=ActivityKind.EBR,
        occurred_at=dt.datetime(2026, 10, 1, tzinfo=dt.UTC),
        outcome="missed",
    )
    ActivityFactory(
        account=account, kind=ActivityKind.CADENCE_CALL, occurred_at=now - dt.timedelta(days=3)
    )
    cadence = selectors.account_engagement_panel(account, now=now)["cadence"]
    assert cadence["ebrs_12_months"] == 2 and cadence["last_ebr"].month == 3
    assert not cadence["ebrs_behind"]
    assert not cadence["status"].overdue
    assert [a.kind for a in cadence["recent"]] == ["cadence_call", "ebr", "ebr", "ebr", "ebr"]


def test_overdue_cadence_for_tams_in_two_queries(tam, django_assert_max_num_queries):
    other = UserFactory(role="TAM")
    idle = UserFactory(role="TAM")
    late = AccountFactory(tam=tam, priority=1)
    _call(late, ActivityKind.CADENCE_CALL, 40)
    on_time = AccountFactory(tam=tam, priority=1)
    _call(on_time, ActivityKind.CADENCE_CALL, 10)
    AccountFactory(tam=tam, priority=2)  # never called: overdue
    AccountFactory(tam=tam, priority=3)  # no TAM cadence
    AccountFactory(tam=other, priority=1)  # never called
    quarterly = AccountFactory(tam=other, priority=2)
    _call(quarterly, ActivityKind.CADENCE_CALL, 50)
    with django_assert_max_num_queries(2):
        counts = selectors.overdue_cadence_for_tams([tam, other, idle])
    assert counts == {tam.pk: 2, other.pk: 1, idle.pk: 0}
    # The cadence follows the rule set: a 45-day P2 cadence makes the 50-day call late.
    RuleSet.objects.filter(region_id=quarterly.region_id, segment=quarterly.segment).update(
        p2_cadence_days=45
    )
    assert selectors.overdue_cadence_for_tams([other])[other.pk] == 2
    # 0 days means "no number set": the handbook default (P2: 60 days) applies again.
    RuleSet.objects.filter(region_id=quarterly.region_id, segment=quarterly.segment).update(
        p2_cadence_days=0
    )
    assert selectors.overdue_cadence_for_tams([other])[other.pk] == 1


# --- Success plans -----------------------------------------------------------------------


def test_success_plan_refresh_is_set_based(tam, django_assert_max_num_queries):
    full, partial, empty = (AccountFactory(tam=tam) for _ in range(3))
    for n in range(3):
        o = SuccessObjective.objects.create(account=full, title=f"F{n}", status="green")
        o.tasks.create(title="t")
    SuccessObjective.objects.create(account=partial, title="P", status="green")
    Account.objects.filter(pk=empty.pk).update(success_plan="full")  # stale
    with django_assert_max_num_queries(3):
        changed = success_plan.success_plan_refresh(account_ids=[full.pk, partial.pk, empty.pk])
    assert sorted(changed) == sorted([full.pk, partial.pk, empty.pk])
    states = dict(Account.objects.values_list("pk", "success_plan"))
    assert (states[full.pk], states[partial.pk], states[empty.pk]) == (
        "full",
        "objectives",
        "none",
    )
    assert success_plan.success_plan_refresh(account_ids=[full.pk, partial.pk, empty.pk]) == []


# --- Personas ----------------------------------------------------------------------------


def test_personas_flag(tam):
    account = AccountFactory(tam=tam)
    dev = ContactFactory(account=account)
    panel = selectors.account_engagement_panel(account)
    assert panel["personas_flagged"]
    assert panel["missing_personas"] == ["Development Lead", "Software Security Lead"]
    personas.contact_personas_set(contact=dev, personas=["development_lead"])
    assert selectors.account_engagement_panel(account)["missing_personas"] == [
        "Software Security Lead"
    ]
    personas.contact_personas_set(
        contact=ContactFactory(account=account), personas=["security_lead"]
    )
    assert not selectors.account_engagement_panel(account)["personas_flagged"]
    with pytest.raises(ValidationError):
        personas.contact_personas_set(contact=dev, personas=["cto"])


def test_a_contact_holds_every_persona_that_applies_to_them(tam):
    """csm-account-engagement.md, Capturing customer personas: "edit the `GitLab Role`
    field and select the persona(s) that apply to them". One contact who is both the
    Development Lead and the Software Security Lead covers both key personas."""
    account = AccountFactory(tam=tam)
    lead = ContactFactory(account=account, name="Dana Both")
    personas.contact_personas_set(contact=lead, personas=["development_lead", "security_lead"])
    assert sorted(lead.personas.values_list("key", flat=True)) == [
        "development_lead",
        "security_lead",
    ]
    panel = selectors.account_engagement_panel(account)
    assert not panel["personas_flagged"]
    assert panel["persona_contacts"][0].persona_labels == [
        "Development Lead",
        "Software Security Lead",
    ]
    # Setting the personas replaces them; none clears them.
    personas.contact_personas_set(contact=lead, personas=["security_lead"])
    assert list(lead.personas.values_list("key", flat=True)) == ["security_lead"]
    personas.contact_personas_set(contact=lead, personas=[])
    assert not lead.personas.exists()


def test_email_templates_fill_merge_fields_from_the_account(tam):
    tam.first_name, tam.last_name = "Tara", "Mills"
    owner = SalesforceUser.objects.create(salesforce_id="005X", name="Al Exec", email="al@x.test")
    account = AccountFactory(
        tam=tam, owner=owner, name="Hooli", collaboration_project_url="https://g.test/hooli"
    )
    contact = ContactFactory(account=account, name="Gavin B")
    fields = emails.merge_fields(account, user=tam, contact=contact)
    subject, body = emails.render_email("initial_engagement", fields)
    assert subject == "The Value of Working with a GitLab Customer Success Manager"
    assert body.startswith("Dear Gavin B,") and "Tara Mills\nYour GitLab Customer" in body
    _, welcome = emails.render_email("welcome_call", fields)
    assert "Al Exec" in welcome and "https://g.test/hooli" in welcome
    _, follow_up = emails.render_email("disengagement_follow_up", fields)
    assert "al@x.test" in follow_up
    for template in emails.templates_for_picker():  # every template renders without leftovers
        s, b = emails.render_email(template.key, fields)
        assert "{{" not in s + b and "{%" not in s + b


def test_the_picker_marks_the_handbook_template_and_portfolios_own(db):
    """csm-account-engagement.md, Email Templates has one template ("Initial customer
    engagement", "Subject: The Value of Working with a GitLab Customer Success Manager");
    the other four of the picker are Portfolio's own text and say so."""
    templates = {t.key: t for t in emails.templates_for_picker()}
    assert list(templates) == [
        "initial_engagement",
        "welcome_call",
        "collaboration_project",
        "disengagement_follow_up",
        "ebr_invitation",
    ]
    assert [k for k, t in templates.items() if t.origin == "handbook"] == ["initial_engagement"]
    assert templates["initial_engagement"].source.startswith("csm-account-engagement.md")
    assert all(t.version == 1 and t.versions.count() == 1 for t in templates.values())
    labels = dict(forms.EmailForm(account=AccountFactory()).fields["template"].choices)
    assert labels["initial_engagement"] == "Initial customer engagement (handbook text)"
    assert labels["ebr_invitation"] == "Executive Business Review invitation (Portfolio's own text)"
    assert sum("(Portfolio's own text)" in label for label in labels.values()) == 4


def test_an_admin_edit_is_a_new_version_and_the_picker_uses_it(client, admin_user):
    """Admins edit the templates ("Please note any points in each template that should be
    personalized and update accordingly", csm-account-engagement.md); each save keeps the
    previous version with who saved it and when."""
    template = EmailTemplate.objects.get(key="ebr_invitation")
    first_body = template.body
    client.force_login(admin_user)
    url = reverse("admin:engagement_emailtemplate_change", args=[template.pk])
    data = {
        "position": template.position,
        "name": template.name,
        "origin": template.origin,
        "source": template.source,
        "subject": "EBR for {{ customer }}",
        "body": "Dear {{ contact_name }}, shall we hold our EBR?",
        "versions-TOTAL_FORMS": "1",
        "versions-INITIAL_FORMS": "1",
        "versions-MIN_NUM_FORMS": "0",
        "versions-MAX_NUM_FORMS": "1000",
        "versions-0-id": template.versions.get().pk,
        "versions-0-template": template.pk,
    }
    response = client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:3000]
    template.refresh_from_db()
    assert (template.version, template.updated_by) == (2, admin_user)
    versions = list(template.versions.order_by("version"))
    assert [v.version for v in versions] == [1, 2]
    assert versions[0].body == first_body and versions[0].saved_by is None
    assert versions[1].subject == "EBR for {{ customer }}" and versions[1].saved_by == admin_user
    assert versions[1].saved_at >= versions[0].saved_at
    account = AccountFactory(name="Hooli")
    subject, body = emails.render_email(
        "ebr_invitation", emails.merge_fields(account, user=None, contact=None)
    )
    assert (subject, body) == ("EBR for Hooli", "Dear Hooli team, shall we hold our EBR?")
    # A template that does not compile is refused; nothing is saved.
    data["body"] = "{% if %}"
    response = client.post(url, data)
    assert response.status_code == 200 and "Not a valid template" in response.content.decode()
    assert EmailTemplate.objects.get(pk=template.pk).version == 2


@pytest.mark.parametrize(
    ("reason", "lists_features"),
    [("downgrade", True), ("churn", True), ("strategic_ended", False), ("other", False)],
)
def test_the_follow_up_lists_lost_features_only_on_downgrade_or_churn(tam, reason, lists_features):
    """tam-account-engagement.md, Disengaging with a customer: "If disengagement is due to
    the customer downgrading/churning, identify the features they will lose access to with
    the feature comparison page." """
    account = AccountFactory(tam=tam)
    fields = emails.merge_fields(account, user=tam, contact=None)
    _, before = emails.render_email("disengagement_follow_up", fields)
    assert "feature-comparison" not in before  # no disengagement recorded yet
    disengagement.disengagement_record(
        account=account,
        user=tam,
        reason=reason,
        reason_detail="",
        met_with_account_executive=True,
        option_support=True,
        option_written_howto=True,
        option_features_lost="Epics, Security dashboards" if lists_features else "",
        option_self_serve=True,
        follow_up_summary="Summary",
    )
    fields = emails.merge_fields(account, user=tam, contact=None)
    _, body = emails.render_email("disengagement_follow_up", fields)
    assert ("feature-comparison" in body) is lists_features
    assert ("Epics, Security dashboards" in body) is lists_features
    assert "GitLab Support" in body  # the other options are always there


def test_email_is_queued_then_sent_once_and_logged(tam, django_capture_on_commit_callbacks):
    account = AccountFactory(tam=tam)
    ContactFactory(account=account, email="C@example.com")
    with django_capture_on_commit_callbacks() as callbacks:
        queued = email_queue(
            account=account, user=tam, to=["c@example.com"], subject="Hi", body="Body & more"
        )
    assert len(callbacks) == 1 and not mail.outbox  # the task, after commit
    email_deliver(outbox_id=queued.pk)
    email_deliver(outbox_id=queued.pk)  # a redelivered task sends nothing again
    assert len(mail.outbox) == 1
    assert mail.outbox[0].subject == "Hi" and mail.outbox[0].reply_to == [tam.email]
    assert Activity.objects.get(account=account, kind="email").body.endswith("Body & more")
    queued.refresh_from_db()
    assert queued.status == "sent" and queued.attempts == 1


def test_email_goes_only_to_contacts_and_is_rate_limited(tam, settings):
    account = AccountFactory(tam=tam)
    ContactFactory(account=account, email="c@example.com")
    with pytest.raises(ValidationError) as refused:
        email_queue(
            account=account,
            user=tam,
            to=["c@example.com"],
            cc=["x@else.test"],
            subject="S",
            body="B",
        )
    assert "x@else.test" in refused.value.message_dict["cc"][0]
    settings.EMAIL_RATE_PER_USER_PER_HOUR = 2
    for _ in range(2):
        email_queue(account=account, user=tam, to=["c@example.com"], subject="S", body="B")
    with pytest.raises(ValidationError) as limited:
        email_queue(account=account, user=tam, to=["c@example.com"], subject="S", body="B")
    assert "the limit is 2" in limited.value.message_dict["to"][0]


# --- Demo data ---------------------------------------------------------------------------


def test_demo_populate_is_deterministic_and_idempotent(tam):
    for n in range(40):
        AccountFactory(tam=tam, priority=1 + n % 2, segment="commercial" if n % 3 else "enterprise")
    out = StringIO()
    demo.populate(stdout=out)
    counts = (
        Engagement.objects.count(),
        EngagementStep.objects.count(),
        SuccessObjective.objects.count(),
        CollaborationProject.objects.count(),
        CustomerIssue.objects.count(),
        Activity.objects.count(),
    )
    assert counts[0] > 0 and counts[2] > 0 and "engagement demo" in out.getvalue()
    demo.populate()
    assert counts == (
        Engagement.objects.count(),
        EngagementStep.objects.count(),
        SuccessObjective.objects.count(),
        CollaborationProject.objects.count(),
        CustomerIssue.objects.count(),
        Activity.objects.count(),
    )
    # The derived success-plan state is consistent with the objectives.
    assert (
        success_plan.success_plan_refresh(
            account_ids=list(Account.objects.values_list("pk", flat=True))
        )
        == []
    )
    project = CollaborationProject.objects.select_related("account").first()
    assert project.account.collaboration_project_url == project.web_url


def test_demo_leaves_no_tam_account_with_a_plan_state_its_objectives_do_not_show(tam):
    """The generated book gives accounts a success-plan state; the demo objectives decide
    it, so the account panel and the priority trace read the same state."""
    accounts = [AccountFactory(tam=tam, success_plan="full") for _ in range(12)]
    demo.populate()
    with_objectives = set(SuccessObjective.objects.values_list("account_id", flat=True))
    for account in Account.objects.filter(pk__in=[a.pk for a in accounts]):
        if account.pk not in with_objectives:
            assert account.success_plan == "none"
