"""Collaboration projects and customer issues against the loopback fake GitLab, with the
real python-gitlab client: project from template, welcome issue, transfer, idempotent
retries (including a create whose answer is lost), refusals that must stay retryable."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from engagement import rules, services
from engagement.models import CollaborationProject, CustomerIssue, Engagement, ProjectStatus
from integrations.gitlab import CollaborationProjectError, project_marker
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
    return services.collaboration_project_request(account=account, template=template, user=user)


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
    services.engagement_start(account=account, kind="new_customer", user=tam)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        project = _request(account, tam)
    assert len(callbacks) == 1  # the creation task, enqueued on commit
    assert project.status == ProjectStatus.REQUESTED and project.path == ACME

    project = services.collaboration_project_provision(project_id=project.pk)

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
    project = services.collaboration_project_provision(
        project_id=_request(account, tam, template="commercial").pk
    )
    created = fake_gitlab.state.projects[project.gitlab_id]
    template = fake_gitlab.project_by_path("customer-success/templates/commercial-template")
    assert created["created_from_template_id"] == template["id"]


def test_welcome_issue_is_created_when_the_template_did_not_bring_it(fake_gitlab, account, tam):  # noqa: F811
    template = fake_gitlab.project_by_path("customer-success/templates/enterprise-template")
    fake_gitlab.state.issues[template["id"]].clear()
    project = services.collaboration_project_provision(project_id=_request(account, tam).pk)
    issues = _issues(fake_gitlab, project.gitlab_id)
    assert [i["title"] for i in issues] == ["Welcome to GitLab"]
    assert "handover" in issues[0]["description"]
    # Running the task again changes nothing and creates nothing.
    services.collaboration_project_provision(project_id=project.pk)
    assert len(_issues(fake_gitlab, project.gitlab_id)) == 1


def test_a_create_whose_answer_was_lost_is_found_on_retry_not_duplicated(
    fake_gitlab,  # noqa: F811
    account,
    tam,
):
    project = _request(account, tam)
    fake_gitlab.fail_after_commit(1)  # GitLab stores the project, the proxy answers 502
    with pytest.raises(CollaborationProjectError) as caught:
        services.collaboration_project_provision(project_id=project.pk)
    assert caught.value.transient
    project.refresh_from_db()
    assert project.status == ProjectStatus.REQUESTED and "retrying" in project.last_error
    assert len(_projects_named(fake_gitlab, ACME)) == 1

    project = services.collaboration_project_provision(project_id=project.pk)  # the retry
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
    project = services.collaboration_project_provision(project_id=_request(account, tam).pk)
    assert project.status == ProjectStatus.FAILED
    assert "no-such-template" in project.last_error and "does not exist" in project.last_error
    assert not _projects_named(fake_gitlab, ACME)
    account.refresh_from_db()
    assert account.collaboration_project_url == ""

    settings.GITLAB_ENTERPRISE_TEMPLATE_PROJECT = "customer-success/templates/enterprise-template"
    retried = _request(account, tam)
    assert retried.pk == project.pk and retried.status == ProjectStatus.REQUESTED
    project = services.collaboration_project_provision(project_id=project.pk)
    assert project.status == ProjectStatus.CREATED


def test_a_template_gitlab_rejects_is_a_clear_non_transient_failure(
    fake_gitlab,  # noqa: F811
    account,
    tam,
):
    # The template exists but GitLab refuses the create (e.g. not a valid template).
    fake_gitlab.fail_next(400, count=1)
    project = _request(account, tam)
    project = services.collaboration_project_provision(project_id=project.pk)
    assert project.status == ProjectStatus.FAILED
    assert "400" in project.last_error


def test_project_moves_to_account_management_when_the_customer_has_paid(
    fake_gitlab,  # noqa: F811
    account,
    tam,
    django_capture_on_commit_callbacks,
):
    engagement = services.engagement_start(account=account, kind="new_customer", user=tam)
    project = services.collaboration_project_provision(project_id=_request(account, tam).pk)
    with pytest.raises(ValidationError, match="paying customer|won opportunity"):
        services.collaboration_project_transfer_request(account=account, user=tam)

    OpportunityFactory(account=account, is_won=True, is_closed=True, stage_name="Closed Won")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.collaboration_project_transfer_request(account=account, user=tam)
    assert len(callbacks) == 1
    project = services.collaboration_project_move(project_id=project.pk)

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
    assert services.collaboration_project_move(project_id=project.pk).status == "transferred"


def test_a_paid_customer_project_is_moved_straight_after_creation(
    fake_gitlab,  # noqa: F811
    account,
    tam,
    django_capture_on_commit_callbacks,
):
    OpportunityFactory(account=account, is_won=True, is_closed=True)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        project = services.collaboration_project_provision(project_id=_request(account, tam).pk)
    assert project.status == ProjectStatus.TRANSFER_REQUESTED
    assert len(callbacks) == 2  # creation task + transfer task
    services.collaboration_project_move(project_id=project.pk)
    assert fake_gitlab.project_by_path(f"{ACCOUNT_MANAGEMENT}/{ACME}")


def test_a_transfer_gitlab_refuses_is_recorded_and_can_be_retried(
    fake_gitlab,  # noqa: F811
    account,
    tam,
):
    project = services.collaboration_project_provision(project_id=_request(account, tam).pk)
    OpportunityFactory(account=account, is_won=True, is_closed=True)
    # Someone already has a project with this path in account management: GitLab refuses.
    blocker = fake_gitlab.add_project(f"{ACCOUNT_MANAGEMENT}/{ACME}")
    services.collaboration_project_transfer_request(account=account, user=tam)
    project = services.collaboration_project_move(project_id=project.pk)
    assert project.status == ProjectStatus.TRANSFER_FAILED
    assert "Project with same path in target namespace" in project.last_error
    assert fake_gitlab.state.projects[project.gitlab_id]["path_with_namespace"].startswith(PRESALES)
    account.refresh_from_db()
    assert PRESALES in account.collaboration_project_url

    del fake_gitlab.state.projects[blocker["id"]]  # the conflict is resolved in GitLab
    services.collaboration_project_transfer_request(account=account, user=tam)
    project = services.collaboration_project_move(project_id=project.pk)
    assert project.status == ProjectStatus.TRANSFERRED and project.last_error == ""


def test_a_transfer_whose_answer_was_lost_is_recognised_as_done(
    fake_gitlab,  # noqa: F811
    account,
    tam,
):
    project = services.collaboration_project_provision(project_id=_request(account, tam).pk)
    OpportunityFactory(account=account, is_won=True, is_closed=True)
    services.collaboration_project_transfer_request(account=account, user=tam)
    fake_gitlab.fail_after_commit(1)  # the PUT is applied, the answer is a 502
    project = services.collaboration_project_move(project_id=project.pk)
    assert project.status == ProjectStatus.TRANSFERRED
    assert fake_gitlab.project_by_path(f"{ACCOUNT_MANAGEMENT}/{ACME}")


def test_paid_projects_are_moved_in_one_set_based_pass(
    fake_gitlab,  # noqa: F811
    tam,
    django_capture_on_commit_callbacks,
):
    paid, unpaid = AccountFactory(tam=tam), AccountFactory(tam=tam)
    for acc in (paid, unpaid):
        services.collaboration_project_provision(project_id=_request(acc, tam).pk)
    OpportunityFactory(account=paid, is_won=True, is_closed=True)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert services.collaboration_projects_transfer_paid() == 1
    assert len(callbacks) == 1
    assert CollaborationProject.objects.get(account=paid).status == "transfer_requested"
    assert CollaborationProject.objects.get(account=unpaid).status == "created"


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def test_customer_issues_show_the_time_since_the_last_answer(fake_gitlab, account, tam):  # noqa: F811
    project = services.collaboration_project_provision(project_id=_request(account, tam).pk)
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

    assert services.customer_issues_sync(account_id=account.pk, now=now) == 3
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
    assert services.customer_issues_sync(account_id=account.pk, now=now) == 2
    assert not CustomerIssue.objects.get(account=account, iid=slow["iid"]).awaiting_answer
    assert not CustomerIssue.objects.filter(iid=followed_up["iid"]).exists()


def test_scheduled_jobs_enqueue_per_project_and_do_nothing_without_gitlab(
    fake_gitlab,  # noqa: F811
    account,
    tam,
    settings,
    django_capture_on_commit_callbacks,
):
    services.collaboration_project_provision(project_id=_request(account, tam).pk)
    AccountFactory(tam=tam)  # no project: nothing to read
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert services.customer_issues_sync_all() == 1
    assert len(callbacks) == 1
    settings.GITLAB_URL = ""
    assert services.customer_issues_sync_all() == 0
    OpportunityFactory(account=account, is_won=True, is_closed=True)
    assert services.collaboration_projects_transfer_paid() == 0
    assert CollaborationProject.objects.get(account=account).status == ProjectStatus.CREATED


def test_a_missing_group_setting_fails_with_its_name_and_gitlab_off_is_refused(
    fake_gitlab,  # noqa: F811
    account,
    tam,
    settings,
):
    project = _request(account, tam)
    settings.GITLAB_PRESALES_GROUP = ""
    project = services.collaboration_project_provision(project_id=project.pk)
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
    project = services.collaboration_project_provision(project_id=_request(account, tam).pk)
    assert project.status == ProjectStatus.CREATED and project.gitlab_id == existing["id"]
    assert len(_projects_named(fake_gitlab, ACME)) == 1


def test_the_bot_user_is_asked_for_once_not_per_account_synced(fake_gitlab, account, tam):  # noqa: F811
    services.collaboration_project_provision(project_id=_request(account, tam).pk)
    fake_gitlab.state.requests.clear()

    for _ in range(3):
        services.customer_issues_sync(account_id=account.pk)

    asked = [path for method, path in fake_gitlab.state.requests if path.endswith("/user")]
    assert len(asked) <= 1
