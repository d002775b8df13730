"""The one module that talks to GitLab (python-gitlab).

Retry policy:
- 429: python-gitlab waits for `Retry-After` (or backs off) and retries, for every method:
  a throttled request was not processed, so even a POST is safe to send again.
- 5xx, connection errors and timeouts: retried with jittered exponential backoff by the
  HTTP session for reads and updates (GET/PUT/DELETE are idempotent in GitLab's API).
  A create (POST) is never blindly re-sent: callers look the object up by a marker
  before creating, so a retried task never makes a second issue or project.
- 400/401/403/404: not retried; raised as python-gitlab's exceptions.

Sections below: the client (shared), then each app's operations.
"""

from __future__ import annotations

import logging

import gitlab
import requests
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

logger = logging.getLogger(__name__)

# Re-exported so apps never import python-gitlab themselves.
GitLabError = gitlab.exceptions.GitlabError
GitLabGetError = gitlab.exceptions.GitlabGetError
GitLabCreateError = gitlab.exceptions.GitlabCreateError
GitLabUpdateError = gitlab.exceptions.GitlabUpdateError
GitLabTransferProjectError = gitlab.exceptions.GitlabTransferProjectError
GitLabHttpError = gitlab.exceptions.GitlabHttpError


def is_enabled() -> bool:
    return bool(settings.GITLAB_URL and settings.GITLAB_TOKEN)


def _session() -> requests.Session:
    retry = Retry(
        total=settings.GITLAB_MAX_RETRIES,
        connect=settings.GITLAB_MAX_RETRIES,
        read=settings.GITLAB_MAX_RETRIES,
        status=settings.GITLAB_MAX_RETRIES,
        status_forcelist=(500, 502, 503, 504),
        allowed_methods=frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"}),
        backoff_factor=0.2,
        backoff_jitter=0.3,
        backoff_max=30,
        respect_retry_after_header=True,
        # Let python-gitlab see the final status and raise its own typed error.
        raise_on_status=False,
    )
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def client() -> gitlab.Gitlab:
    """A python-gitlab client from settings; raises ImproperlyConfigured naming what is
    missing when the integration is not configured."""
    missing = [name for name in ("GITLAB_URL", "GITLAB_TOKEN") if not getattr(settings, name)]
    if missing:
        raise ImproperlyConfigured(
            f"The GitLab integration needs {' and '.join(missing)} to be set."
        )
    return gitlab.Gitlab(
        settings.GITLAB_URL,
        private_token=settings.GITLAB_TOKEN,
        timeout=settings.GITLAB_TIMEOUT_SECONDS,
        retry_transient_errors=False,
        per_page=100,
        session=_session(),
    )


def required_setting(name: str) -> str:
    """A GITLAB_* setting that an operation cannot do without."""
    value = getattr(settings, name, "")
    if not value:
        raise ImproperlyConfigured(f"Set {name} to use this GitLab operation.")
    return value


# --- Triage board (triage app) ---
# The Account Triage project (GITLAB_TRIAGE_PROJECT): issues with the handbook's labels,
# a milestone per fiscal quarter, group labels and the "Colours" and region boards.
# Callers pass plain values; nothing here knows about Django models.


def _triage_project():
    return client().projects.get(required_setting("GITLAB_TRIAGE_PROJECT"))


def triage_labels_ensure(labels: dict[str, str]) -> int:
    """Create the missing `labels` (name -> hex colour) as group labels of the triage
    project's group (a personal namespace gets project labels). Returns how many were made."""
    project = _triage_project()
    namespace = project.namespace
    if namespace.get("kind") == "group":
        owner = client().groups.get(namespace["full_path"], lazy=True)
    else:
        owner = project
    existing = {label.name for label in project.labels.list(iterator=True)}
    created = 0
    for name, colour in labels.items():
        if name in existing:
            continue
        try:
            owner.labels.create({"name": name, "color": colour})
            created += 1
        except GitLabCreateError as exc:
            if exc.response_code != 409:  # made by someone else meanwhile
                raise
    return created


def triage_boards_ensure(boards: dict[str, tuple[str, ...]]) -> int:
    """Create the missing boards (name -> label names of its lists, in order) and their
    lists. Labels must exist. Returns how many boards and lists were made."""
    project = _triage_project()
    labels = {label.name: label.id for label in project.labels.list(iterator=True)}
    existing = {board.name: board for board in project.boards.list(iterator=True)}
    created = 0
    for name, list_labels in boards.items():
        board = existing.get(name)
        if board is None:
            board = project.boards.create({"name": name})
            created += 1
        have = {item.label["name"] for item in board.lists.list(iterator=True) if item.label}
        for label_name in list_labels:
            if label_name in have or label_name not in labels:
                continue
            try:
                board.lists.create({"label_id": labels[label_name]})
                created += 1
            except GitLabCreateError as exc:
                if exc.response_code != 409:
                    raise
    return created


def triage_milestone_ensure(title: str, *, start_date: str, due_date: str) -> int:
    """The id of the project milestone `title`, created when missing."""
    project = _triage_project()
    for milestone in project.milestones.list(title=title, iterator=True):
        if milestone.title == title:
            return milestone.id
    try:
        return project.milestones.create(
            {"title": title, "start_date": start_date, "due_date": due_date}
        ).id
    except GitLabCreateError:
        # Created meanwhile (or by a create whose answer was lost): look it up again.
        for milestone in project.milestones.list(title=title, iterator=True):
            if milestone.title == title:
                return milestone.id
        raise


def triage_issue_find(marker: str) -> dict | None:
    """The issue whose body carries `marker` (the idempotency key), or None."""
    project = _triage_project()
    for issue in project.issues.list(search=marker, state="all", iterator=True):
        if marker in (issue.description or ""):
            return _issue_dict(issue.attributes)
    return None


def triage_issue_upsert(
    *,
    marker: str,
    iid: int | None,
    title: str,
    description: str,
    labels: list[str],
    milestone_id: int | None,
    due_date: str | None,
    closed: bool,
) -> dict:
    """Create or update a triage issue. Without a known `iid` the issue is looked up by
    `marker` first, so a create retried after a lost answer never makes a second one.
    Returns the issue (iid, web_url, state, labels, ...) and whether it was created."""
    project = _triage_project()
    if iid is None:
        found = triage_issue_find(marker)
        iid = found["iid"] if found else None
    data = {
        "title": title,
        "description": description,
        "labels": labels,
        "milestone_id": milestone_id or 0,
        "due_date": due_date or "",
    }
    if iid is None:
        issue = project.issues.create({k: v for k, v in data.items() if v not in ("", 0)})
        result = issue.attributes
        if closed:
            result = project.issues.update(issue.iid, {"state_event": "close"})
        return {**_issue_dict(result), "created": True}
    current = project.issues.get(iid)
    if closed and current.state != "closed":
        data["state_event"] = "close"
    elif not closed and current.state == "closed":
        data["state_event"] = "reopen"
    result = project.issues.update(iid, data)
    return {**_issue_dict(result), "created": False}


def triage_note_add(*, iid: int, body: str) -> int:
    """Add a note (a weekly update) to a triage issue; returns the note id."""
    project = _triage_project()
    return project.issues.get(iid, lazy=True).notes.create({"body": body}).id


def triage_notes_list(*, iid: int) -> list[tuple[int, str]]:
    """(id, body) of every note of a triage issue."""
    project = _triage_project()
    notes = project.issues.get(iid, lazy=True).notes.list(iterator=True)
    return [(note.id, note.body) for note in notes]


def triage_issues_changed(*, updated_after: str | None) -> list[dict]:
    """Every triage issue updated after the ISO timestamp (all of them when None)."""
    project = _triage_project()
    params: dict = {"state": "all", "order_by": "updated_at", "sort": "asc"}
    if updated_after:
        params["updated_after"] = updated_after
    return [_issue_dict(issue.attributes) for issue in project.issues.list(iterator=True, **params)]


def _issue_dict(attrs: dict) -> dict:
    return {
        "iid": attrs["iid"],
        "web_url": attrs.get("web_url", ""),
        "state": attrs.get("state", "opened"),
        "labels": list(attrs.get("labels") or []),
        "description": attrs.get("description") or "",
        "updated_at": attrs.get("updated_at"),
        "milestone": (attrs.get("milestone") or {}).get("title"),
        "due_date": attrs.get("due_date"),
    }
