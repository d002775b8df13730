"""The collaboration-project task on a real `celery worker` process: the request is
committed, the task is enqueued on commit, the worker creates the project in the fake
GitLab and records it in PostgreSQL."""

import time

import pytest

from engagement import rules
from engagement.models import CollaborationProject, ProjectStatus
from engagement.services import projects
from tests.factories import AccountFactory
from tests.fakes.gitlab import (
    TOKEN,
    fake_gitlab,  # noqa: F401 - fixture
)

pytestmark = pytest.mark.worker


def test_a_real_worker_creates_the_collaboration_project(celery_worker, fake_gitlab, tam):  # noqa: F811
    from django.conf import settings

    worker = celery_worker(
        {
            name: str(getattr(settings, name))
            for name in (
                "GITLAB_URL",
                "GITLAB_PRESALES_GROUP",
                "GITLAB_ACCOUNT_MANAGEMENT_GROUP",
                "GITLAB_ENTERPRISE_TEMPLATE_PROJECT",
                "GITLAB_COMMERCIAL_TEMPLATE_PROJECT",
            )
        }
        | {"GITLAB_TOKEN": TOKEN}
    )
    account = AccountFactory(tam=tam, name="Umbrella Corp")
    # The service commits (transactional_db): the task is enqueued on commit.
    project = projects.collaboration_project_request(
        account=account, template="enterprise", user=tam
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        project.refresh_from_db()
        if project.status != ProjectStatus.REQUESTED:
            break
        time.sleep(0.3)
    assert project.status == ProjectStatus.CREATED, worker.output()
    path = rules.project_path_for("Umbrella Corp", account.salesforce_id)  # umbrella-corp-<suffix>
    assert fake_gitlab.project_by_path(f"customer-success/pre-sales/{path}")
    account.refresh_from_db()
    assert account.collaboration_project_url.endswith(f"/customer-success/pre-sales/{path}")
    assert "engagement.collaboration_project_create" in worker.output()
    assert CollaborationProject.objects.count() == 1
