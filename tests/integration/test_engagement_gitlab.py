"""Collaboration projects and customer issues against the loopback fake GitLab, with the
real python-gitlab client: project from template, welcome issue, transfer, idempotent
retries (including a create whose answer is lost), refusals that must stay retryable."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from engagement import rules
from engagement.models import CollaborationProject, CustomerIssue, Engagement, ProjectStatus
from engagement.services import checklist, customer_issues, projects
from integrations.gitlab import GitLabError, project_marker
from tests.factories import AccountFactory, OpportunityFactory
from tests.fakes.gitlab import fake_gitlab  # noqa: F401 - fixture

PRESALES = "customer-success/pre-sales"
ACCOUNT_MANAGEMENT = "customer-success/account-management"
ACME_ID = "0015g00000AcmeRAAV"
ACME = rules.project_path_for("Acme Rockets, Inc.", ACME_ID)  # acme-rockets-inc-<suffix>


@pytest.fixture
def account(tam):
    return AccountFactory(tam=tam, name="Acme Rockets, Inc.", salesforce_id=ACME_ID)


def _request(account, user, template="enterprise", callbacks=None) -> CollaborationProject:
    return projects.collaboration_project_request(account=account, template=template, user=user)


def _projects_named(fake, path: str) -> list[dict]:
    return [p for p in fake.state.projects.values() if p["path"] == path]


def _issues(fake, project_id: int) -> list[dict]:
    return list(fake.state.issues[project_id].values())


def test_project_is_created_in_presales_from_the_template_with_the_welcome_issue(
    fake_gitlab,  # noqa: F811
    account,
    tam,
    django_capture_on_commit_callbacks,
):
    checklist.engagement_start(account=account, kind="new_customer", user=tam)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        project = _request(account, tam)
    assert len(callbacks) == 1  # the creation task, enqueued on commit
    assert project.status == ProjectStatus.REQUESTED and project.path == ACME

    project = projects.collaboration_project_provision(project_id=project.pk)

    created = fake_gitlab.project_by_path(f"{PRESALES}/{ACME}")
    template = fake_gitlab.project_by_path("customer-success/templates/enterprise-template")
    assert created["created_from_template_id"] == template["id"]
    # The template brought the preloaded issue: it is used, not duplicated.
    titles = [i["title"] for i in _issues(fake_gitlab, created["id"])]
    assert titles == ["Welcome to GitLab"]
    assert project.status == ProjectStatus.CREATED
    assert project.welcome_issue_iid == 1
    account.refresh_from_db()
    assert account.collaboration_project_url == created["web_url"]
    steps = {s.key: s for s in Engagement.objects.get(account=account).steps.all()}
    assert steps["sa_create_project"].done_at and steps["confirm_template"].done_by == tam
    assert steps["move_post_sales"].done_at is None


def test_commercial_template_is_used_for_a_commercial_project(fake_gitlab, account, tam):  # noqa: F811
    project = projects.collaboration_project_provision(
        project_id=_request(account, tam, template="commercial").pk
    )
    created = fake_gitlab.state.projects[project.gitlab_id]
    template = fake_gitlab.project_by_path("customer-success/templates/commercial-template")
    assert created["created_from_template_id"] == template["id"]


def test_welcome_issue_is_created_when_the_template_did_not_bring_it(fake_gitlab, account, tam):  # noqa: F811
    template = fake_gitlab.project_by_path("customer-success/templates/enterprise-template")
    fake_gitlab.state.issues[template["id"]].clear()
    project = projects.collaboration_project_provision(project_id=_request(account, tam).pk)
    issues = _issues(fake_gitlab, project.gitlab_id)
    assert [i["title"] for i in issues] == ["Welcome to GitLab"]
    assert "handover" in issues[0]["description"]
    # Running the task again changes nothing and creates nothing.
    projects.collaboration_project_provision(project_id=project.pk)
    assert len(_issues(fake_gitlab, project.gitlab_id)) == 1


def test_a_create_whose_answer_was_lost_is_found_on_retry_not_duplicated(
    fake_gitlab,  # noqa: F811
    account,
    tam,
):
    project = _request(account, tam)
    fake_gitlab.fail_after_commit(1)  # GitLab stores the project, the proxy answers 502
    with pytest.raises(GitLabError) as caught:
        projects.collaboration_project_provision(project_id=project.pk)
    assert caught.value.transient
    project.refresh_from_db()
    assert project.status == ProjectStatus.REQUESTED and "retrying" in project.last_error
    assert len(_projects_named(fake_gitlab, ACME)) == 1

    project = projects.collaboration_project_provision(project_id=project.pk)  # the retry
    assert project.status == ProjectStatus.CREATED and project.last_error == ""
    assert len(_projects_named(fake_gitlab, ACME)) == 1
    assert len(_issues(fake_gitlab, project.gitlab_id)) == 1


def test_a_missing_template_project_fails_clearly_and_can_be_retried(
    fake_gitlab,  # noqa: F811
    account,
    tam,
    settings,
):
    settings.GITLAB_ENTERPRISE_TEMPLATE_PROJECT = "customer-success/templates/no-such-template"
    project = projects.collaboration_project_provision(project_id=_request(account, tam).pk)
    assert project.status == ProjectStatus.FAILED
    assert "no-such-template" in project.last_error and "does not exist" in project.last_error
    assert not _projects_named(fake_gitlab, ACME)
    account.refresh_from_db()
    assert account.collaboration_project_url == ""

    settings.GITLAB_ENTERPRISE_TEMPLATE_PROJECT = "customer-success/templates/enterprise-template"
    retried = _request(account, tam)
    assert retried.pk == project.pk and retried.status == ProjectStatus.REQUESTED
    project = projects.collaboration_project_provision(project_id=project.pk)
    assert project.status == ProjectStatus.CREATED


def test_a_template_gitlab_rejects_is_a_clear_non_transient_failure(
    fake_gitlab,  # noqa: F811
    account,
    tam,
):
    # The template exists but GitLab refuses the create (e.g. not a valid template).
    fake_gitlab.fail_next(400, count=1)
    project = _request(account, tam)
    project = projects.collaboration_project_provision(project_id=project.pk)
    assert project.status == ProjectStatus.FAILED
    assert "400" in project.last_error


def test_project_moves_to_account_management_when_the_customer_has_paid(
    fake_gitlab,  # noqa: F811
    account,
    tam,
    django_capture_on_commit_callbacks,
):
    engagement = checklist.engagement_start(account=account, kind="new_customer", user=tam)
    project = projects.collaboration_project_provision(project_id=_request(account, tam).pk)
    with pytest.raises(ValidationError, match=r"paying customer|won opportunity"):
        projects.collaboration_project_transfer_request(account=account, user=tam)

    OpportunityFactory(account=account, is_won=True, is_closed=True, stage_name="Closed Won")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        projects.collaboration_project_transfer_request(account=account, user=tam)
    assert len(callbacks) == 1
    project = projects.collaboration_project_move(project_id=project.pk)

    moved = fake_gitlab.state.projects[project.gitlab_id]
    assert moved["path_with_namespace"] == f"{ACCOUNT_MANAGEMENT}/{ACME}"
    assert project.status == ProjectStatus.TRANSFERRED and project.in_post_sales
    assert project.welcome_issue_url.endswith(f"{ACCOUNT_MANAGEMENT}/{ACME}/-/issues/1")
    account.refresh_from_db()
    assert account.collaboration_project_url == moved["web_url"]
    engagement.refresh_from_db()
    assert engagement.stage == "post_sales"
    assert engagement.steps.get(key="move_post_sales").done_at is not None
    # Running the move again is harmless.
    assert projects.collaboration_project_move(project_id=project.pk).status == "transferred"


def test_a_paid_customer_project_is_moved_straight_after_creation(
    fake_gitlab,  # noqa: F811
    account,
    tam,
    django_capture_on_commit_callbacks,
):
    OpportunityFactory(account=account, is_won=True, is_closed=True)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        project = projects.collaboration_project_provision(project_id=_request(account, tam).pk)
    assert project.status == ProjectStatus.TRANSFER_REQUESTED
    assert len(callbacks) == 2  # creation task + transfer task
    projects.collaboration_project_move(project_id=project.pk)
    assert fake_gitlab.project_by_path(f"{ACCOUNT_MANAGEMENT}/{ACME}")


def test_a_transfer_gitlab_refuses_is_recorded_and_can_be_retried(
    fake_gitlab,  # noqa: F811
    account,
    tam,
):
    project = projects.collaboration_project_provision(project_id=_request(account, tam).pk)
    OpportunityFactory(account=account, is_won=True, is_closed=True)
    # Someone already has a project with this path in account management: GitLab refuses.
    blocker = fake_gitlab.add_project(f"{ACCOUNT_MANAGEMENT}/{ACME}")
    projects.collaboration_project_transfer_request(account=account, user=tam)
    project = projects.collaboration_project_move(project_id=project.pk)
    assert project.status == ProjectStatus.TRANSFER_FAILED
    assert "Project with same path in target namespace" in project.last_error
    assert fake_gitlab.state.projects[project.gitlab_id]["path_with_namespace"].startswith(PRESALES)
    account.refresh_from_db()
    assert PRESALES in account.collaboration_project_url

    del fake_gitlab.state.projects[blocker["id"]]  # the conflict is resolved in GitLab
    projects.collaboration_project_transfer_request(account=account, user=tam)
    project = projects.collaboration_project_move(project_id=project.pk)
    assert project.status == ProjectStatus.TRANSFERRED and project.last_error == ""


def test_a_transfer_whose_answer_was_lost_is_recognised_as_done(
    fake_gitlab,  # noqa: F811
    account,
    tam,
):
    project = projects.collaboration_project_provision(project_id=_request(account, tam).pk)
    OpportunityFactory(account=account, is_won=True, is_closed=True)
    projects.collaboration_project_transfer_request(account=account, user=tam)
    fake_gitlab.fail_after_commit(1)  # the PUT is applied, the answer is a 502
    project = projects.collaboration_project_move(project_id=project.pk)
    assert project.status == ProjectStatus.TRANSFERRED
    assert fake_gitlab.project_by_path(f"{ACCOUNT_MANAGEMENT}/{ACME}")


def test_paid_projects_are_moved_in_one_set_based_pass(
    fake_gitlab,  # noqa: F811
    tam,
    django_capture_on_commit_callbacks,
):
    paid, unpaid = AccountFactory(tam=tam), AccountFactory(tam=tam)
    for acc in (paid, unpaid):
        projects.collaboration_project_provision(project_id=_request(acc, tam).pk)
    OpportunityFactory(account=paid, is_won=True, is_closed=True)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert projects.collaboration_projects_transfer_paid() == 1
    assert len(callbacks) == 1
    assert CollaborationProject.objects.get(account=paid).status == "transfer_requested"
    assert CollaborationProject.objects.get(account=unpaid).status == "created"


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def test_customer_issues_show_the_time_since_the_last_answer(fake_gitlab, account, tam):  # noqa: F811
    project = projects.collaboration_project_provision(project_id=_request(account, tam).pk)
    now = timezone.now()
    pid = project.gitlab_id
    customer = {"id": 7, "username": "jane.customer", "name": "Jane"}
    tam_user = {"id": 8, "username": "tam.person", "name": "TAM"}

    def question(title: str, days_ago: float) -> dict:
        issue = fake_gitlab._create_issue(pid, {"title": title})
        issue["author"] = customer
        issue["created_at"] = _iso(now - dt.timedelta(days=days_ago))
        return issue

    def note(issue: dict, author: dict, days_ago: float) -> None:
        fake_gitlab.state.notes.setdefault((pid, issue["iid"]), []).append(
            {
                "id": fake_gitlab.state.new_id(),
                "body": "…",
                "created_at": _iso(now - dt.timedelta(days=days_ago)),
                "author": author,
                "system": False,
            }
        )

    slow = question("How do we set up SAML?", days_ago=5)
    answered = question("Runner autoscaling best practice?", days_ago=4)
    note(answered, tam_user, days_ago=3)
    followed_up = question("Migrating from Jenkins", days_ago=6)
    note(followed_up, tam_user, days_ago=5)
    note(followed_up, customer, days_ago=1)  # the customer asked again yesterday
    closed = question("Old question", days_ago=10)
    closed["state"] = "closed"

    assert customer_issues.customer_issues_sync(account_id=account.pk, now=now) == 3
    rows = {i.title: i for i in CustomerIssue.objects.filter(account=account)}
    assert set(rows) == {slow["title"], answered["title"], followed_up["title"]}  # not welcome
    assert rows[slow["title"]].awaiting_answer and rows[slow["title"]].last_answer_at is None
    assert not rows[answered["title"]].awaiting_answer
    assert rows[followed_up["title"]].awaiting_answer
    assert (now - rows[followed_up["title"]].waiting_since).days == 1

    from engagement.selectors import account_engagement_panel

    panel = account_engagement_panel(account, now=now)
    assert [i.title for i in panel["customer_issues"] if i.slow] == [slow["title"]]

    # The customer's question is answered and the other one closed: the mirror follows.
    note(slow, tam_user, days_ago=0)
    fake_gitlab.state.issues[pid][followed_up["iid"]]["state"] = "closed"
    assert customer_issues.customer_issues_sync(account_id=account.pk, now=now) == 2
    assert not CustomerIssue.objects.get(account=account, iid=slow["iid"]).awaiting_answer
    assert not CustomerIssue.objects.filter(iid=followed_up["iid"]).exists()


def test_scheduled_jobs_enqueue_per_project_and_do_nothing_without_gitlab(
    fake_gitlab,  # noqa: F811
    account,
    tam,
    settings,
    django_capture_on_commit_callbacks,
):
    projects.collaboration_project_provision(project_id=_request(account, tam).pk)
    AccountFactory(tam=tam)  # no project: nothing to read
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert customer_issues.customer_issues_sync_all() == 1
    assert len(callbacks) == 1
    settings.GITLAB_URL = ""
    assert customer_issues.customer_issues_sync_all() == 0
    OpportunityFactory(account=account, is_won=True, is_closed=True)
    assert projects.collaboration_projects_transfer_paid() == 0
    assert CollaborationProject.objects.get(account=account).status == ProjectStatus.CREATED


def test_a_missing_group_setting_fails_with_its_name_and_gitlab_off_is_refused(
    fake_gitlab,  # noqa: F811
    account,
    tam,
    settings,
):
    project = _request(account, tam)
    settings.GITLAB_PRESALES_GROUP = ""
    project = projects.collaboration_project_provision(project_id=project.pk)
    assert project.status == ProjectStatus.FAILED
    assert "GITLAB_PRESALES_GROUP" in project.last_error
    settings.GITLAB_URL = ""
    with pytest.raises(ValidationError, match="GITLAB_URL"):
        _request(account, tam)


def test_a_create_racing_another_attempt_uses_the_project_it_made(
    fake_gitlab,  # noqa: F811
    account,
    tam,
):
    """Another attempt created the project but the lookups by path missed it: the lookup
    by the account's marker finds it, and it is used, not made a second time."""
    existing = fake_gitlab.add_project(
        f"{PRESALES}/{ACME}", description=f"Made meanwhile {project_marker(ACME_ID)}"
    )
    fake_gitlab.fail_next(404, count=2)  # both lookups by path miss
    project = projects.collaboration_project_provision(project_id=_request(account, tam).pk)
    assert project.status == ProjectStatus.CREATED and project.gitlab_id == existing["id"]
    assert len(_projects_named(fake_gitlab, ACME)) == 1


def test_the_bot_user_is_asked_for_once_not_per_account_synced(fake_gitlab, account, tam):  # noqa: F811
    projects.collaboration_project_provision(project_id=_request(account, tam).pk)
    fake_gitlab.state.requests.clear()

    for _ in range(3):
        customer_issues.customer_issues_sync(account_id=account.pk)

    asked = [path for method, path in fake_gitlab.state.requests if path.endswith("/user")]
    assert len(asked) <= 1


# --- Issue 11: projects keyed by the account, the template's import, one welcome issue ---

ZEPHYR_ID = "0015g00000ZephAAAA"
ZEPHYR_CAPS_ID = "0015g00000ZEPHAAAA"


def test_two_accounts_whose_names_slug_alike_each_get_their_own_project(fake_gitlab, tam):  # noqa: F811
    first = AccountFactory(tam=tam, name="Zephyr Aerospace LLC", salesforce_id=ZEPHYR_ID)
    second = AccountFactory(tam=tam, name="ZEPHYR AEROSPACE LLC.", salesforce_id=ZEPHYR_CAPS_ID)
    # A third account with exactly the first one's name (a duplicate in Salesforce).
    third = AccountFactory(tam=tam, name="Zephyr Aerospace LLC", salesforce_id="0015g00000Zeph3AAA")

    provisioned = [
        projects.collaboration_project_provision(project_id=_request(acc, tam).pk)
        for acc in (first, second, third)
    ]

    assert all(p.status == ProjectStatus.CREATED for p in provisioned)
    assert len({p.gitlab_id for p in provisioned}) == 3
    assert len({p.path_with_namespace.lower() for p in provisioned}) == 3
    for project, acc in zip(provisioned, (first, second, third), strict=True):
        remote = fake_gitlab.state.projects[project.gitlab_id]
        assert project_marker(acc.salesforce_id) in remote["description"]
        assert [i["title"] for i in _issues(fake_gitlab, project.gitlab_id)] == [
            "Welcome to GitLab"
        ]
    names = [fake_gitlab.state.projects[p.gitlab_id]["name"] for p in provisioned]
    assert names[0] == "Zephyr Aerospace LLC" and names[1] == "ZEPHYR AEROSPACE LLC."
    assert names[2] == f"Zephyr Aerospace LLC {rules.project_suffix('0015g00000Zeph3AAA')}"
    # Provisioning again finds each account's own project by path and marker.
    for project in provisioned:
        CollaborationProject.objects.filter(pk=project.pk).update(status=ProjectStatus.REQUESTED)
        again = projects.collaboration_project_provision(project_id=project.pk)
        assert again.gitlab_id == project.gitlab_id
    assert len(fake_gitlab.state.projects) == 3 + 3  # triage, two templates, three customers


def test_a_project_carrying_another_accounts_marker_is_an_error_on_both_accounts(
    fake_gitlab,  # noqa: F811
    client,
    tam,
):
    owner = AccountFactory(tam=tam, name="Zephyr Aerospace LLC", salesforce_id=ZEPHYR_ID)
    other = AccountFactory(tam=tam, name="ZEPHYR AEROSPACE LLC.", salesforce_id=ZEPHYR_CAPS_ID)
    owned = projects.collaboration_project_provision(project_id=_request(owner, tam).pk)
    # Someone moved the first customer's project in GitLab to where the second one's goes.
    remote = fake_gitlab.state.projects[owned.gitlab_id]
    tangled = fake_gitlab.add_project(
        f"{PRESALES}/{rules.project_path_for(other.name, other.salesforce_id)}",
        description=remote["description"],  # the first account's marker
    )

    project = projects.collaboration_project_provision(project_id=_request(other, tam).pk)

    assert project.status == ProjectStatus.FAILED and project.gitlab_id is None
    assert tangled["path_with_namespace"] in project.last_error
    assert ZEPHYR_ID in project.last_error
    owned.refresh_from_db()
    assert owned.status == ProjectStatus.CREATED  # its own project is fine
    assert ZEPHYR_CAPS_ID in owned.last_error and tangled["path_with_namespace"] in owned.last_error
    other.refresh_from_db()
    assert other.collaboration_project_url == ""  # never linked
    assert len(_issues(fake_gitlab, tangled["id"])) == 0  # nothing written to it

    client.force_login(tam)
    for acc in (owner, other):
        html = client.get(
            reverse("engagement:section", args=[acc.salesforce_id, "project"]),
            HTTP_HX_REQUEST="true",
        ).content.decode()
        assert 'role="alert"' in html and tangled["path_with_namespace"] in html
        partner = other if acc is owner else owner
        assert reverse("ui:account", args=[partner.salesforce_id]) in html

    # Resolved in GitLab (the stray project removed): the retry creates the second
    # account's own project and both errors clear.
    del fake_gitlab.state.projects[tangled["id"]]
    projects.collaboration_project_request(account=other, template="enterprise", user=tam)
    project = projects.collaboration_project_provision(project_id=project.pk)
    assert project.status == ProjectStatus.CREATED and project.gitlab_id != owned.gitlab_id
    owned.refresh_from_db()
    assert owned.last_error == "" and owned.conflict_with is None


def test_a_project_recorded_for_another_account_is_not_linked_to_a_second(
    fake_gitlab,  # noqa: F811
    account,
    tam,
):
    """Rows made before projects carried a marker may point two accounts at one project:
    a second account is never linked to a project already recorded for another."""
    first = projects.collaboration_project_provision(project_id=_request(account, tam).pk)
    second_account = AccountFactory(tam=tam, name="Acme Rockets")
    second = _request(second_account, tam)
    remote = fake_gitlab.state.projects[first.gitlab_id]
    # The lookup finds the first account's project (its marker says it is this one's).
    remote["description"] = project_marker(second_account.salesforce_id)
    fake_gitlab.state.projects[first.gitlab_id]["path"] = second.path
    fake_gitlab.state.projects[first.gitlab_id]["path_with_namespace"] = f"{PRESALES}/{second.path}"

    second = projects.collaboration_project_provision(project_id=second.pk)

    assert second.status == ProjectStatus.FAILED and second.gitlab_id is None
    assert "already the project of account" in second.last_error
    first.refresh_from_db()
    assert second_account.salesforce_id in first.last_error


def test_the_templates_welcome_issue_is_used_once_its_import_has_finished(
    fake_gitlab,  # noqa: F811
    account,
    tam,
):
    fake_gitlab.import_delay = 0.8  # GitLab imports the template in the background
    project = _request(account, tam)

    with pytest.raises(GitLabError) as caught:
        projects.collaboration_project_provision(project_id=project.pk)
    assert caught.value.transient and caught.value.pending  # the task retries later
    project.refresh_from_db()
    assert project.status == ProjectStatus.REQUESTED
    assert "still importing" in project.last_error and "(retrying)" in project.last_error
    [remote] = _projects_named(fake_gitlab, ACME)
    assert remote["import_status"] in ("scheduled", "started")
    assert _issues(fake_gitlab, remote["id"]) == []  # nothing made while importing

    time.sleep(0.9)
    project = projects.collaboration_project_provision(project_id=project.pk)

    assert project.status == ProjectStatus.CREATED and project.last_error == ""
    issues = _issues(fake_gitlab, remote["id"])
    assert [i["title"] for i in issues] == ["Welcome to GitLab"]
    assert "PLEASE-READ" in issues[0]["description"]  # the template's, not ours
    assert project.welcome_issue_iid == issues[0]["iid"]
    assert len(_projects_named(fake_gitlab, ACME)) == 1


def test_a_failed_template_import_needs_a_person(fake_gitlab, account, tam):  # noqa: F811
    fake_gitlab.import_delay = 60
    project = _request(account, tam)
    with pytest.raises(GitLabError):
        projects.collaboration_project_provision(project_id=project.pk)
    [remote] = _projects_named(fake_gitlab, ACME)
    fake_gitlab.state.imports.pop(remote["id"])
    remote.update(import_status="failed", import_error="Template export timed out")

    project = projects.collaboration_project_provision(project_id=project.pk)

    assert project.status == ProjectStatus.FAILED
    assert "Template export timed out" in project.last_error
    assert _issues(fake_gitlab, remote["id"]) == []
