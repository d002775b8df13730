"""The GitLab mirror's state on the triage board and an issue's page (issue 15, rough
edges): "GitLab not configured" where it is not; else the last push, the last sync run
and its error, against the loopback GitLab fake."""

from __future__ import annotations

import pytest

from integrations.gitlab import GitLabError
from integrations.models import Source, SyncRun
from tests import factories
from tests.fakes.gitlab import fake_gitlab  # noqa: F401 - fixture
from triage import mirror
from triage.services import issues

pytestmark = pytest.mark.django_db


def _issue(tam):
    account = factories.AccountFactory(tam=tam, name="Acme Inc", health="amber")
    return issues.triage_issue_open(
        account=account, user=tam, colour="amber", reason="* Amber: Low user adoption"
    )


def _state(html: str) -> str:
    start = html.index('id="gitlab-mirror-state"')
    return html[start : html.index("</p>", start)]


def test_not_configured_is_said_on_the_board_and_the_issue(client, tam, settings):
    settings.GITLAB_URL = ""
    issue = _issue(tam)
    client.force_login(tam)
    for url in ("/triage/", f"/triage/issues/{issue.pk}/"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert "GitLab not configured" in _state(response.content.decode()), url


def test_last_push_and_the_last_runs_error_are_shown(
    client,
    manager,
    tam,
    team,
    fake_gitlab,  # noqa: F811
    settings,
):
    issue = _issue(tam)
    client.force_login(manager)
    state = _state(client.get(f"/triage/issues/{issue.pk}/").content.decode())
    assert "not pushed yet" in state and "no sync has run yet" in state
    mirror.triage_issue_push(issue_id=issue.pk)
    issue.refresh_from_db()
    state = _state(client.get(f"/triage/issues/{issue.pk}/").content.decode())
    assert "last pushed" in state and f"#{issue.gitlab_iid}" in state
    board = _state(client.get("/triage/").content.decode())
    assert "GitLab mirror:" in board and "waiting to be pushed" not in board

    # GitLab goes away: the sync run fails and the board says so, with the error.
    settings.GITLAB_URL = "http://127.0.0.1:9"
    settings.GITLAB_MAX_RETRIES = 0
    with pytest.raises(GitLabError):
        mirror.triage_gitlab_sync(trigger="manual")
    settings.GITLAB_URL = fake_gitlab.url
    run = SyncRun.objects.filter(source=Source.GITLAB).latest("started_at")
    assert run.status == "failed" and run.error
    board = client.get("/triage/").content.decode()
    state = _state(board)
    assert "mirror-error" in board.split('id="gitlab-mirror-state"')[0][-80:]
    assert "Failed" in state and run.error[:40] in state
    assert 'href="/integrations/sync-runs/"' in state
