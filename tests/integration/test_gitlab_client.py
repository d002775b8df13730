"""The GitLab client's retry policy against the loopback fake, with the real python-gitlab
(`gl.client()` is python-gitlab's own client, so it raises python-gitlab's exceptions)."""

import gitlab
import pytest
from django.core.exceptions import ImproperlyConfigured

from integrations import gitlab as gl
from tests.fakes.gitlab import fake_gitlab  # noqa: F401 - fixture


def test_client_reads_a_project_by_path(fake_gitlab):  # noqa: F811
    project = gl.client().projects.get("customer-success/account-triage")
    assert project.path_with_namespace == "customer-success/account-triage"


def test_429_is_retried_after_retry_after(fake_gitlab):  # noqa: F811
    fake_gitlab.fail_next(429, count=2, retry_after=0)
    project = gl.client().projects.get("customer-success/account-triage")
    assert project.name == "account-triage"
    assert len(fake_gitlab.state.requests) == 3


def test_5xx_on_a_read_is_retried_with_backoff(fake_gitlab):  # noqa: F811
    fake_gitlab.fail_next(503, count=2)
    project = gl.client().projects.get("customer-success/account-triage")
    assert project.name == "account-triage"


def test_a_create_is_not_blindly_resent_after_a_5xx(fake_gitlab):  # noqa: F811
    fake_gitlab.fail_after_commit(1)
    project = gl.client().projects.get("customer-success/account-triage", lazy=True)
    with pytest.raises(gitlab.exceptions.GitlabCreateError):
        project.issues.create({"title": "Acme Inc"})
    # GitLab stored it once; nothing was sent twice.
    assert (
        len(
            fake_gitlab.state.issues[
                fake_gitlab.project_by_path("customer-success/account-triage")["id"]
            ]
        )
        == 1
    )


def test_404_is_not_retried(fake_gitlab):  # noqa: F811
    with pytest.raises(gitlab.exceptions.GitlabGetError):
        gl.client().projects.get("nope/nothing")
    assert len(fake_gitlab.state.requests) == 1


def test_pagination_follows_every_page(fake_gitlab):  # noqa: F811
    triage = fake_gitlab.project_by_path("customer-success/account-triage")
    for n in range(130):
        fake_gitlab._create_issue(triage["id"], {"title": f"Issue {n}"})
    issues = gl.client().projects.get(triage["id"], lazy=True).issues.list(iterator=True)
    assert len(list(issues)) == 130


def test_missing_settings_name_the_variable(settings):
    settings.GITLAB_URL = ""
    settings.GITLAB_TOKEN = ""
    with pytest.raises(ImproperlyConfigured, match="GITLAB_URL and GITLAB_TOKEN"):
        gl.client()
