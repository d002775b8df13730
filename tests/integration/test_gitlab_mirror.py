"""The triage board mirrored to GitLab, both ways, against the loopback fake GitLab with
the real python-gitlab client (and, for sync_gitlab, a real Celery worker)."""

from __future__ import annotations

import datetime as dt
import io
import time

import pytest
from django.core.management import call_command

from integrations import gitlab as gl
from integrations.models import SyncRun
from tests import factories
from tests.fakes.gitlab import fake_gitlab  # noqa: F401 - fixture
from triage import labels, mirror
from triage.models import EventKind, EventSource, IssueStatus, TriageIssue, TriageUpdate
from triage.services import issues

TRIAGE = "customer-success/account-triage"


@pytest.fixture
def account(tam, team):
    return factories.AccountFactory(
        tam=tam,
        name="Acme Inc",
        health="amber",
        renewal_date=dt.date(2026, 11, 22),
        collaboration_project_url="https://gitlab.example/acme/success-plan",
    )


def remote_issues(fake) -> list[dict]:
    return list(fake.state.issues[fake.project_by_path(TRIAGE)["id"]].values())


def prepare_project() -> None:
    """Labels, boards and the FY27-Q4 milestone exist, so the next POST is the issue."""
    mirror._ensure_labels_and_boards()
    gl.triage_milestone_ensure("FY27-Q4", start_date="2026-11-01", due_date="2027-01-31")


def open_issue(account, **kw) -> TriageIssue:
    return issues.triage_issue_open(
        account=account,
        user=account.tam,
        colour=kw.pop("colour", "amber"),
        reason=kw.pop("reason", "* Amber: Low user adoption"),
        **kw,
    )


@pytest.mark.django_db
def test_push_creates_the_issue_with_template_labels_milestone_and_due_date(
    fake_gitlab,  # noqa: F811
    account,
):
    issue = open_issue(account, due_date=dt.date(2026, 12, 1))
    message = mirror.triage_issue_push(issue_id=issue.pk)
    assert "created" in message
    [remote] = remote_issues(fake_gitlab)
    assert remote["title"] == "Acme Inc"
    assert remote["labels"] == ["Amber", "New", account.region_id]
    assert remote["milestone"]["title"] == "FY27-Q4"
    assert remote["due_date"] == "2026-12-01"
    body = remote["description"]
    assert "**Salesforce URL**" in body and account.salesforce_id in body
    assert "https://gitlab.example/acme/success-plan" in body
    assert "2026-11-22" in body and "Low user adoption" in body
    assert labels.marker(issue.pk) in body
    assert "Technical Account Management Leader" in body  # the triage team
    issue.refresh_from_db()
    assert issue.gitlab_iid == remote["iid"] and not issue.needs_push
    # Group labels and both boards were created.
    group = fake_gitlab.group_by_path("customer-success")
    names = {label["name"] for label in fake_gitlab.state.group_labels[group["id"]]}
    assert set(labels.ALL_LABELS) <= names


@pytest.mark.django_db
def test_a_retried_create_does_not_make_a_second_issue(fake_gitlab, account):  # noqa: F811
    issue = open_issue(account)
    prepare_project()
    fake_gitlab.fail_after_commit(1)  # GitLab stores the issue, the proxy answers 502
    with pytest.raises(gl.GitLabError):
        mirror.triage_issue_push(issue_id=issue.pk)
    assert len(remote_issues(fake_gitlab)) == 1
    issue.refresh_from_db()
    assert issue.gitlab_iid is None  # we never heard back
    message = mirror.triage_issue_push(issue_id=issue.pk)  # the task's retry
    assert "updated" in message
    assert len(remote_issues(fake_gitlab)) == 1
    issue.refresh_from_db()
    assert issue.gitlab_iid == remote_issues(fake_gitlab)[0]["iid"]


@pytest.mark.django_db
def test_a_retried_create_through_the_celery_task_does_not_duplicate(
    fake_gitlab,  # noqa: F811
    account,
):
    from triage.tasks import triage_issue_push

    issue = open_issue(account)
    prepare_project()
    fake_gitlab.fail_after_commit(1)
    # Eager apply runs the task's own autoretry at once: the first attempt fails after
    # GitLab stored the issue; the retry finds it by its marker and updates it.
    result = triage_issue_push.apply(args=[issue.pk])
    assert result.successful()
    assert "updated" in result.result
    assert len(remote_issues(fake_gitlab)) == 1
    posts = [p for m, p in fake_gitlab.state.requests if m == "POST" and p.endswith("/issues")]
    assert len(posts) == 1


@pytest.mark.django_db
def test_changes_update_the_issue_and_recovery_closes_it_with_the_label(
    fake_gitlab,  # noqa: F811
    account,
):
    issue = open_issue(account)
    mirror.triage_issue_push(issue_id=issue.pk)
    issues.triage_issue_review(issue=issue, user=account.tam)
    issues.triage_update_add(issue=issue, user=account.tam, body="Exec call booked.")
    mirror.triage_issue_push(issue_id=issue.pk)
    [remote] = remote_issues(fake_gitlab)
    assert "New" not in remote["labels"]
    project_id = fake_gitlab.project_by_path(TRIAGE)["id"]
    notes = fake_gitlab.state.notes[(project_id, remote["iid"])]
    assert len(notes) == 1 and "Exec call booked." in notes[0]["body"]
    # Pushing again adds no second note.
    mirror.triage_issue_push(issue_id=issue.pk)
    assert len(fake_gitlab.state.notes[(project_id, remote["iid"])]) == 1
    assert TriageUpdate.objects.get().gitlab_note_id == notes[0]["id"]

    issue.refresh_from_db()
    issues.triage_issue_move(
        issue=issue, user=account.tam, colour="green", reason="Adoption recovered."
    )
    mirror.triage_issue_push(issue_id=issue.pk)
    [remote] = remote_issues(fake_gitlab)
    assert remote["state"] == "closed"
    assert remote["labels"][0] == "Green"


@pytest.mark.django_db
def test_label_and_state_changes_on_gitlab_flow_back(fake_gitlab, account):  # noqa: F811
    issue = open_issue(account)
    mirror.triage_issue_push(issue_id=issue.pk)
    project_id = fake_gitlab.project_by_path(TRIAGE)["id"]
    iid = remote_issues(fake_gitlab)[0]["iid"]
    time.sleep(0.01)
    # The triage team drags the card to Red, classifies it and removes ~New on GitLab.
    fake_gitlab._update_issue(project_id, iid, {"labels": f"Red,U&A,{account.region_id}"})
    result = mirror.triage_gitlab_sync(trigger="test")
    assert result.run.status == "succeeded"
    assert result.run.updated_count == 1
    issue.refresh_from_db()
    assert (issue.colour, issue.churn_class, issue.is_new) == ("red", "U&A", False)
    assert not issue.needs_push
    move = issue.events.get(kind=EventKind.MOVED)
    assert move.source == EventSource.GITLAB and move.to_colour == "red"
    account.refresh_from_db()
    assert account.health == "amber"  # the mismatch is for the five-minute check

    time.sleep(0.01)
    fake_gitlab._update_issue(project_id, iid, {"state_event": "close"})
    result = mirror.triage_gitlab_sync(trigger="test")
    issue.refresh_from_db()
    assert issue.status == IssueStatus.CLOSED
    # A label Portfolio does not manage survives the next push.
    fake_gitlab._update_issue(project_id, iid, {"add_labels": "customer::priority"})
    TriageIssue.objects.filter(pk=issue.pk).update(needs_push=True)
    mirror.triage_issue_push(issue_id=issue.pk)
    assert "customer::priority" in remote_issues(fake_gitlab)[0]["labels"]
    # Nothing changed since: the next run updates nothing.
    result = mirror.triage_gitlab_sync(trigger="test")
    assert result.run.updated_count == 0


@pytest.mark.django_db
def test_sync_pushes_pending_issues_and_creates_boards(fake_gitlab, account):  # noqa: F811
    issue = open_issue(account)  # on_commit never ran in this test: still pending
    assert issue.needs_push
    out = io.StringIO()
    call_command("sync_gitlab", stdout=out)
    assert out.getvalue().strip() == (
        "GitLab sync succeeded: 1 created, 0 updated, 0 unchanged, 0 quarantined"
    )
    assert len(remote_issues(fake_gitlab)) == 1
    run = SyncRun.objects.get(source="gitlab")
    assert run.trigger == "command" and run.created_count == 1
    boards = fake_gitlab.state.boards[fake_gitlab.project_by_path(TRIAGE)["id"]]
    lists = {b["name"]: [item["label"]["name"] for item in b["lists"]] for b in boards}
    assert lists == {
        "Colours": ["Red", "Amber", "Yellow", "Green"],
        "Regions": ["US-WEST", "US-EAST", "EMEA", "APAC", "LATAM"],
    }
    # Idempotent: a second run makes nothing new.
    call_command("sync_gitlab", stdout=io.StringIO())
    assert len(remote_issues(fake_gitlab)) == 1
    assert len(fake_gitlab.state.boards[fake_gitlab.project_by_path(TRIAGE)["id"]]) == 2


@pytest.mark.django_db
def test_5xx_and_429_during_sync_are_retried(fake_gitlab, account):  # noqa: F811
    open_issue(account)
    fake_gitlab.fail_next(503, count=2)
    fake_gitlab.fail_next(429, count=1, retry_after=0)
    result = mirror.triage_gitlab_sync(trigger="test")
    assert result.run.status == "succeeded"
    assert len(remote_issues(fake_gitlab)) == 1


@pytest.mark.django_db
def test_gitlab_disabled_mirror_is_a_noop_that_says_so(settings, account):
    settings.GITLAB_URL = ""
    settings.GITLAB_TOKEN = ""
    issue = open_issue(account)
    assert mirror.triage_issue_push(issue_id=issue.pk) == mirror.DISABLED
    result = mirror.triage_gitlab_sync()
    assert result.run is None and "disabled" in result.message
    out = io.StringIO()
    call_command("sync_gitlab", stdout=out)
    assert "disabled" in out.getvalue()


@pytest.mark.worker
def test_sync_gitlab_on_a_real_worker(fake_gitlab, celery_worker, tam, team):  # noqa: F811
    from triage.tasks import sync_gitlab

    account = factories.AccountFactory(tam=tam, health="red")
    issue = issues.triage_issue_open(
        account=account, user=tam, colour="red", reason="Cancelling", churn_class="E&A"
    )
    TriageIssue.objects.filter(pk=issue.pk).update(needs_push=True)
    celery_worker(
        {
            "GITLAB_URL": fake_gitlab.url,
            "GITLAB_TOKEN": "glpat-fake-token",
            "GITLAB_TRIAGE_PROJECT": TRIAGE,
        }
    )
    message = sync_gitlab.delay("test").get(timeout=60)
    assert message.startswith("GitLab sync succeeded: 1 created")
    [remote] = remote_issues(fake_gitlab)
    assert remote["labels"] == ["Red", "New", "E&A", account.region_id]
    issue.refresh_from_db()
    assert issue.gitlab_iid == remote["iid"]


@pytest.mark.django_db
def test_a_new_renewal_date_moves_the_milestone_on_the_next_sync(
    fake_gitlab,  # noqa: F811
    account,
):
    issue = open_issue(account)
    mirror.triage_issue_push(issue_id=issue.pk)
    account.renewal_date = dt.date(2027, 3, 15)  # Salesforce moved the renewal
    account.save()
    result = mirror.triage_gitlab_sync(trigger="test")
    assert result.run.updated_count >= 1
    issue.refresh_from_db()
    assert (issue.renewal_date, issue.milestone) == (dt.date(2027, 3, 15), "FY28-Q1")
    [remote] = remote_issues(fake_gitlab)
    assert remote["milestone"]["title"] == "FY28-Q1"
    assert "2027-03-15" in remote["description"]


@pytest.mark.django_db
def test_a_gitlab_change_that_cannot_apply_is_quarantined_and_the_run_goes_on(
    fake_gitlab,  # noqa: F811
    account,
):
    from integrations.models import QuarantinedRecord

    first = open_issue(account)
    mirror.triage_issue_push(issue_id=first.pk)
    issues.triage_issue_move(issue=first, user=account.tam, colour="green", reason="Fine")
    mirror.triage_issue_push(issue_id=first.pk)  # closed on GitLab too
    second = open_issue(account, colour="amber")
    mirror.triage_issue_push(issue_id=second.pk)
    project_id = fake_gitlab.project_by_path(TRIAGE)["id"]
    time.sleep(0.01)
    # Someone reopens the old issue on GitLab: the account would have two open issues.
    first.refresh_from_db()
    second.refresh_from_db()
    fake_gitlab._update_issue(project_id, first.gitlab_iid, {"state_event": "reopen"})
    fake_gitlab._update_issue(project_id, second.gitlab_iid, {"remove_labels": "New"})
    result = mirror.triage_gitlab_sync(trigger="test")
    assert result.run.status == "completed_with_errors"
    assert result.run.quarantined_count == 1
    record = QuarantinedRecord.objects.get(sync_run=result.run)
    assert record.source == "gitlab" and "Cannot apply" in record.reason
    second.refresh_from_db()
    assert not second.is_new  # the other change still applied


@pytest.mark.django_db
def test_a_run_left_running_by_a_dead_worker_is_marked_failed(fake_gitlab):  # noqa: F811
    from django.utils import timezone

    dead = SyncRun.objects.create(source="gitlab", started_at=timezone.now(), trigger="schedule")

    result = mirror.triage_gitlab_sync(trigger="test")

    assert result.run.status == "succeeded"
    dead.refresh_from_db()
    assert dead.status == "failed" and "worker stopped" in dead.error


# --- Issue 11: group milestones, 5xx on label/board creates ---


@pytest.mark.django_db
def test_the_quarters_group_milestone_is_used_and_the_push_does_not_fail(
    fake_gitlab,  # noqa: F811
    account,
):
    # The quarter's milestone was made in the triage project's group (as GitLab users do
    # for every project of a group): GitLab refuses a project milestone of that title.
    group = fake_gitlab.add_group_milestone("customer-success", "FY27-Q4")
    issue = open_issue(account)

    message = mirror.triage_issue_push(issue_id=issue.pk)

    assert "created" in message
    [remote] = remote_issues(fake_gitlab)
    assert remote["milestone"]["id"] == group["id"] and remote["milestone"]["group_id"]
    assert fake_gitlab.state.milestones[fake_gitlab.project_by_path(TRIAGE)["id"]] == []
    # Every push of the quarter uses it, through the sync too.
    later = factories.AccountFactory(
        tam=account.tam, health="red", renewal_date=dt.date(2026, 12, 5)
    )
    second = open_issue(later, colour="red", churn_class="E&A")
    result = mirror.triage_gitlab_sync(trigger="test")
    assert result.run.status == "succeeded" and result.run.quarantined_count == 0
    second.refresh_from_db()
    pid = fake_gitlab.project_by_path(TRIAGE)["id"]
    assert fake_gitlab.state.issues[pid][second.gitlab_iid]["milestone"]["id"] == group["id"]


@pytest.mark.django_db
def test_a_group_milestone_is_found_on_a_gitlab_older_than_16_7(fake_gitlab):  # noqa: F811
    """GitLab before 16.7 ignores include_ancestors: the group milestone shows up only
    with include_parent_milestones, after GitLab refused the project milestone."""
    group = fake_gitlab.add_group_milestone("customer-success", "FY27-Q4")
    fake_gitlab.knows_include_ancestors = False
    milestone_id = gl.triage_milestone_ensure(
        "FY27-Q4", start_date="2026-11-01", due_date="2027-01-31"
    )
    assert milestone_id == group["id"]


@pytest.mark.django_db
def test_5xx_on_label_and_board_creates_are_retried_not_the_end_of_the_run(
    fake_gitlab,  # noqa: F811
    account,
):
    open_issue(account)
    fake_gitlab.fail_creates(503, count=2, kinds=("label",))
    # A board GitLab stored while the proxy answered 502: retried, it must not be made
    # twice (GitLab allows two boards of one name).
    fake_gitlab.fail_creates(502, count=1, kinds=("board",), after_commit=True)
    fake_gitlab.fail_creates(500, count=1, kinds=("board_list",))

    result = mirror.triage_gitlab_sync(trigger="test")

    assert result.run.status == "succeeded"
    assert fake_gitlab.state.create_failures == []  # every injected failure was hit
    group = fake_gitlab.group_by_path("customer-success")
    names = [label["name"] for label in fake_gitlab.state.group_labels[group["id"]]]
    assert sorted(names) == sorted(set(labels.ALL_LABELS))  # each once
    boards = fake_gitlab.state.boards[fake_gitlab.project_by_path(TRIAGE)["id"]]
    assert sorted(b["name"] for b in boards) == ["Colours", "Regions"]
    colours = next(b for b in boards if b["name"] == "Colours")
    assert [item["label"]["name"] for item in colours["lists"]] == [
        "Red",
        "Amber",
        "Yellow",
        "Green",
    ]
    assert len(remote_issues(fake_gitlab)) == 1


@pytest.mark.django_db
def test_a_label_create_whose_answer_was_lost_is_not_an_error(fake_gitlab):  # noqa: F811
    fake_gitlab.fail_creates(502, count=1, kinds=("label",), after_commit=True)
    made = gl.triage_labels_ensure({"Red": "#ff0000", "Amber": "#ffa500"})
    group = fake_gitlab.group_by_path("customer-success")
    assert sorted(label["name"] for label in fake_gitlab.state.group_labels[group["id"]]) == [
        "Amber",
        "Red",
    ]
    assert made == 2


def test_a_sync_skipped_for_the_lock_leaves_a_skipped_row(db, fake_gitlab):  # noqa: F811
    from django.db import connections

    from integrations.models import Source, SyncStatus

    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [mirror.SYNC_LOCK_KEY])
        result = mirror.triage_gitlab_sync(trigger="second")
    finally:
        other.close()
    assert result.run is None and "skipped" in result.message
    run = SyncRun.objects.get(source=Source.GITLAB)
    assert (run.status, run.trigger) == (SyncStatus.SKIPPED, "second")
    assert "Another GitLab sync" in run.error
