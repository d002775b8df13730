"""The one module that talks to GitLab (python-gitlab).

Retry policy:
- 429: python-gitlab waits for `Retry-After` (or backs off) and retries, for every method:
  a throttled request was not processed, so even a POST is safe to send again.
- 5xx, connection errors and timeouts: retried with jittered exponential backoff by the
  HTTP session for reads and updates (GET/PUT/DELETE are idempotent in GitLab's API).
  A create (POST) is never blindly re-sent by the session. Creates of objects that have
  a natural key (labels by name, boards by name, board lists by label, milestones by
  title) are retried here by `_create_retrying`: before each new attempt the object is
  looked up by that key, so a create whose answer was lost is found, not made twice (a
  409 "already exists" on the retry means the lost one was stored). Issues and projects
  carry a marker instead and are looked up by it before creating; the task retries them.
- 400/401/403/404: not retried.

Errors: every operation below raises one type, `GitLabError` (GitLab's answer code, or
`unreachable` when no answer came; `transient` when a retry may pass), never
python-gitlab's or requests' own exceptions, so apps import neither. `client()` itself
is the raw python-gitlab client and raises python-gitlab's exceptions.

Configured: `missing_settings()` / `is_enabled()` is the one check of what is set.

Sections below: the client (shared), then each app's operations.
"""

from __future__ import annotations

import functools
import logging
import random
import re
import time
from collections.abc import Callable
from typing import Any, TypeVar

import gitlab
import requests
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

logger = logging.getLogger(__name__)

# python-gitlab's exceptions, caught here only: operations raise GitLabError instead.
_ClientError = gitlab.exceptions.GitlabError
_GetError = gitlab.exceptions.GitlabGetError
_CreateError = gitlab.exceptions.GitlabCreateError
# No answer at all (connection refused or reset, timeout): python-gitlab lets these through.
_NoAnswer = requests.RequestException

# What every GitLab operation needs; an operation may need more (`required_setting`).
REQUIRED_SETTINGS = ("GITLAB_URL", "GITLAB_TOKEN")
NOT_CONFIGURED = "GitLab is not configured: set GITLAB_URL and GITLAB_TOKEN."


class GitLabError(Exception):
    """A GitLab operation GitLab refused or could not do: the one error type apps see.

    `response_code` is GitLab's answer (None when none came: then `unreachable` is True).
    `transient` is True for what a retry may fix (5xx, 429, timeouts, connection errors,
    a template import still running); False for what needs a person (a 4xx, a template
    project that does not exist, a refused transfer). `pending` marks a template import
    still running: the task waits longer for it than for a failure."""

    def __init__(
        self,
        message: str,
        *,
        response_code: int | None = None,
        unreachable: bool = False,
        transient: bool = False,
        pending: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.response_code = response_code
        self.unreachable = unreachable
        self.transient = transient or pending
        self.pending = pending


def _unset(names: tuple[str, ...]) -> list[str]:
    return [name for name in names if not getattr(settings, name, "")]


def missing_settings(*needed: str) -> list[str]:
    """The one "is GitLab configured" check: which of GITLAB_URL, GITLAB_TOKEN and the
    operation's own `needed` settings are unset (empty when all are set)."""
    return _unset((*REQUIRED_SETTINGS, *needed))


def is_enabled(*needed: str) -> bool:
    """GITLAB_URL, GITLAB_TOKEN and each of `needed` are set."""
    return not missing_settings(*needed)


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
    missing = missing_settings()
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


T = TypeVar("T")


def _transient(exc: Exception) -> bool:
    """5xx, 429 and no answer at all (connection error, timeout) may pass on a retry."""
    code = getattr(exc, "response_code", None)
    return code is None or code == 429 or code >= 500


def _gitlab_failure(action: str, exc: Exception) -> GitLabError:
    """GitLabError from python-gitlab's or requests' exception, naming what was being done."""
    code = getattr(exc, "response_code", None)
    detail = getattr(exc, "error_message", None) or str(exc)
    where = f"GitLab answered {code}" if code else "GitLab could not be reached"
    return GitLabError(
        f"{action}: {where}: {detail}",
        response_code=code,
        unreachable=isinstance(exc, _NoAnswer),
        transient=_transient(exc),
    )


F = TypeVar("F", bound=Callable[..., Any])


def _raises_gitlab_error(action: str) -> Callable[[F], F]:
    """The operation raises GitLabError (naming `action`) for python-gitlab's and requests'
    exceptions; a GitLabError of a nested operation passes through unchanged."""

    def decorate(operation: F) -> F:
        @functools.wraps(operation)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return operation(*args, **kwargs)
            except (_ClientError, _NoAnswer) as exc:
                raise _gitlab_failure(action, exc) from exc

        return wrapper  # type: ignore[return-value]

    return decorate


def _create_retrying(create: Callable[[], T], find: Callable[[], T | None]) -> T:
    """Create an object that has a natural key, retrying a 5xx / no answer like the
    session retries reads: jittered exponential backoff, GITLAB_MAX_RETRIES attempts.

    Before each retry `find` looks the object up by its key: when the failed attempt was
    stored after all (a proxy's 502 after GitLab committed), it is used, never created
    twice. A 4xx is GitLab's answer and is raised (the caller decides what 409 means)."""
    attempts = settings.GITLAB_MAX_RETRIES + 1
    for attempt in range(attempts):
        if attempt:
            found = find()
            if found is not None:
                return found
        try:
            return create()
        except (_ClientError, _NoAnswer) as exc:
            if not _transient(exc) or attempt == attempts - 1:
                raise
            delay = min(30.0, 0.2 * 2**attempt) * (0.7 + random.random() * 0.6)  # nosec B311 # jitter and demo data, not security
            logger.warning("GitLab create failed (%s); retrying in %.1fs", exc, delay)
            time.sleep(delay)
    raise AssertionError("unreachable")


def required_setting(name: str) -> str:
    """A GITLAB_* setting that an operation cannot do without."""
    if _unset((name,)):
        raise ImproperlyConfigured(f"Set {name} to use this GitLab operation.")
    return getattr(settings, name)


# --- Triage board (triage app) ---
# The Account Triage project (GITLAB_TRIAGE_PROJECT): issues with the handbook's labels,
# a milestone per fiscal quarter, group labels and the "Colours" and region boards.
# Callers pass plain values; nothing here knows about Django models.


def _triage_project():
    return client().projects.get(required_setting("GITLAB_TRIAGE_PROJECT"))


@_raises_gitlab_error("Creating the triage labels")
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

        def find(name: str = name) -> bool | None:
            # Labels are unique by name: one found now was made by a lost attempt.
            return any(label.name == name for label in project.labels.list(search=name)) or None

        try:
            _create_retrying(
                functools.partial(owner.labels.create, {"name": name, "color": colour}), find
            )
            created += 1
        except _CreateError as exc:
            if exc.response_code != 409:  # made meanwhile (or by a retried lost attempt)
                raise
    return created


@_raises_gitlab_error("Creating the triage boards")
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
            # Board names are not unique in GitLab: a blind re-send would make a second
            # board, so a retry looks for the one a lost attempt made first.

            def find_board(name: str = name) -> Any:
                return next((b for b in project.boards.list(iterator=True) if b.name == name), None)

            board = _create_retrying(
                functools.partial(project.boards.create, {"name": name}), find_board
            )
            created += 1
        for label_name in list_labels:
            if label_name not in labels:
                continue
            if _board_list_has(board, label_name):
                continue

            def find(board=board, label_name: str = label_name) -> bool | None:
                return _board_list_has(board, label_name) or None

            try:
                _create_retrying(
                    functools.partial(board.lists.create, {"label_id": labels[label_name]}), find
                )
                created += 1
            except _CreateError as exc:
                if exc.response_code != 409:  # the list exists already
                    raise
    return created


def _board_list_has(board, label_name: str) -> bool:
    return any(
        item.label and item.label["name"] == label_name for item in board.lists.list(iterator=True)
    )


def _milestone_find(project, title: str, *, ancestors: str = "include_ancestors") -> int | None:
    """The id of the milestone `title` of the project or of its group and the group's
    ancestors (`include_ancestors`, GitLab 16.7+; older versions spell it
    `include_parent_milestones` and ignore the new name)."""
    for milestone in project.milestones.list(title=title, iterator=True, **{ancestors: "true"}):
        if milestone.title == title:
            return milestone.id
    return None


@_raises_gitlab_error("Creating the triage milestone")
def triage_milestone_ensure(title: str, *, start_date: str, due_date: str) -> int:
    """The id of the milestone `title`: the project's, or a group milestone of the
    project's group or its ancestors (GitLab refuses a project milestone whose title a
    group milestone uses), created in the project when neither exists."""
    project = _triage_project()
    found = _milestone_find(project, title)
    if found is not None:
        return found
    try:
        return _create_retrying(
            lambda: (
                project.milestones.create(
                    {"title": title, "start_date": start_date, "due_date": due_date}
                ).id
            ),
            lambda: _milestone_find(project, title),
        )
    except _CreateError:
        # Refused: created meanwhile, or a group milestone with this title that a GitLab
        # older than 16.7 did not list (it knows only include_parent_milestones).
        for spelling in ("include_ancestors", "include_parent_milestones"):
            found = _milestone_find(project, title, ancestors=spelling)
            if found is not None:
                return found
        raise


@_raises_gitlab_error("Looking up the triage issue")
def triage_issue_find(marker: str) -> dict | None:
    """The issue whose body carries `marker` (the idempotency key), or None."""
    project = _triage_project()
    for issue in project.issues.list(search=marker, state="all", iterator=True):
        if marker in (issue.description or ""):
            return _issue_dict(issue.attributes)
    return None


@_raises_gitlab_error("Writing the triage issue")
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
    managed_labels: tuple[str, ...] = (),
) -> dict:
    """Create or update a triage issue. Without a known `iid` the issue is looked up by
    `marker` first, so a create retried after a lost answer never makes a second one.
    Labels outside `managed_labels` that are on the GitLab issue are kept.
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
    # Keep labels someone added on GitLab that Portfolio does not manage.
    data["labels"] = labels + [
        name for name in current.labels if name not in managed_labels and name not in labels
    ]
    if closed and current.state != "closed":
        data["state_event"] = "close"
    elif not closed and current.state == "closed":
        data["state_event"] = "reopen"
    result = project.issues.update(iid, data)
    return {**_issue_dict(result), "created": False}


@_raises_gitlab_error("Adding a note to the triage issue")
def triage_note_add(*, iid: int, body: str) -> int:
    """Add a note (a weekly update) to a triage issue; returns the note id."""
    project = _triage_project()
    return project.issues.get(iid, lazy=True).notes.create({"body": body}).id


@_raises_gitlab_error("Reading the triage issue's notes")
def triage_notes_list(*, iid: int) -> list[tuple[int, str]]:
    """(id, body) of every note of a triage issue."""
    project = _triage_project()
    notes = project.issues.get(iid, lazy=True).notes.list(iterator=True)
    return [(note.id, note.body) for note in notes]


@_raises_gitlab_error("Reading the changed triage issues")
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


# --- Collaboration projects (engagement app) ---
# Customer collaboration projects: created in GITLAB_PRESALES_GROUP from the Enterprise or
# Commercial custom project template, moved to GITLAB_ACCOUNT_MANAGEMENT_GROUP once the
# customer has paid, with the preloaded "Welcome to GitLab" issue; and the customer's open
# questions (issues and their notes).
#
# A project belongs to an account by its marker, not its name: the description carries
# `<!-- portfolio:account:<Salesforce id> -->`. Every operation looks the project up by
# its path (which ends in a suffix of the Salesforce id, so two accounts never share one)
# and by the marker before creating it; a project found there with another account's
# marker, or none, is a conflict, never linked.

PROJECT_MARKER = "<!-- portfolio:account:{} -->"
PROJECT_MARKER_RE = re.compile(r"<!-- portfolio:account:([A-Za-z0-9]+) -->")
# import_status of a project whose template import is still running
IMPORT_RUNNING = ("scheduled", "started", "regeneration_in_progress")


def project_marker(salesforce_id: str) -> str:
    return PROJECT_MARKER.format(salesforce_id)


class CollaborationProjectConflict(GitLabError):
    """The project found for an account belongs to another account (it carries that
    account's marker) or to none (no marker: not made by Portfolio). Never linked; needs
    a person. `project` is the project found, `owner_salesforce_id` its marker (or None)."""

    def __init__(self, message: str, *, project: dict, owner_salesforce_id: str | None) -> None:
        super().__init__(message)
        self.project = project
        self.owner_salesforce_id = owner_salesforce_id


def _marker_of(description: str | None) -> str | None:
    match = PROJECT_MARKER_RE.search(description or "")
    return match.group(1) if match else None


def _project_dict(attrs: dict) -> dict:
    return {
        "id": attrs["id"],
        "path_with_namespace": attrs["path_with_namespace"],
        "web_url": attrs.get("web_url", ""),
        "namespace": (attrs.get("namespace") or {}).get("full_path", ""),
        "description": attrs.get("description") or "",
        "marker": _marker_of(attrs.get("description")),
    }


def _owned(found: dict, salesforce_id: str) -> dict:
    """`found` if it carries the account's marker; else a CollaborationProjectConflict."""
    if found["marker"] == salesforce_id:
        return found
    if found["marker"]:
        whose = f"carries the marker of another account (Salesforce id {found['marker']})"
    else:
        whose = "carries no Portfolio account marker (it was not made for this account)"
    raise CollaborationProjectConflict(
        f"The GitLab project {found['path_with_namespace']} {whose}; it was not linked to "
        f"this account (Salesforce id {salesforce_id}).",
        project=found,
        owner_salesforce_id=found["marker"],
    )


def collaboration_project_find(*, path: str, salesforce_id: str) -> dict | None:
    """The account's project: at `path` in the account-management or the pre-sales group
    (post-sales first: a moved project is found where it now lives), else the one project
    of those groups that carries the account's marker (a renamed or moved one). None when
    there is none. A project at `path` that is not the account's raises
    CollaborationProjectConflict; two projects with its marker, a GitLabError."""
    gl = client()
    groups = [
        required_setting("GITLAB_ACCOUNT_MANAGEMENT_GROUP"),
        required_setting("GITLAB_PRESALES_GROUP"),
    ]
    try:
        for group in groups:
            try:
                attrs = gl.projects.get(f"{group}/{path}").attributes
            except _GetError as exc:
                if exc.response_code != 404:
                    raise
                continue
            return _owned(_project_dict(attrs), salesforce_id)
        # GitLab's project search matches the description too (case-insensitively: the
        # exact marker is compared here).
        matches = [
            _project_dict(found.attributes)
            for group in groups
            for found in gl.groups.get(group, lazy=True).projects.list(
                search=salesforce_id, iterator=True
            )
            if _marker_of(found.attributes.get("description")) == salesforce_id
        ]
    except (_ClientError, _NoAnswer) as exc:
        raise _gitlab_failure("Looking up the project", exc) from exc
    if len(matches) > 1:
        paths = ", ".join(m["path_with_namespace"] for m in matches)
        raise GitLabError(
            f"Several GitLab projects carry this account's marker ({paths}): keep one (remove "
            "the marker from the others' description), then retry."
        )
    return matches[0] if matches else None


def collaboration_project_get(*, project_id: int, salesforce_id: str) -> dict:
    """The project recorded for the account, read by id. One made before projects carried
    a marker gets the account's marker now; one with another account's marker raises
    CollaborationProjectConflict."""
    gl = client()
    try:
        project = gl.projects.get(project_id)
        found = _project_dict(project.attributes)
        if found["marker"] is None:
            description = f"{found['description']}\n\n{project_marker(salesforce_id)}".strip()
            gl.projects.update(project_id, {"description": description})
            found = {**found, "description": description, "marker": salesforce_id}
    except (_ClientError, _NoAnswer) as exc:
        raise _gitlab_failure("Reading the project", exc) from exc
    return _owned(found, salesforce_id)


def _taken(exc: Exception, field: str) -> bool:
    """GitLab's 400 "<field> has already been taken" on a project create."""
    message = getattr(exc, "error_message", None)
    if getattr(exc, "response_code", None) != 400:
        return False
    if isinstance(message, dict):
        return any(
            key.split(".")[-1] == field and "taken" in str(value) for key, value in message.items()
        )
    return field in str(message) and "taken" in str(message)


def collaboration_project_create(
    *,
    name: str,
    alternative_name: str,
    path: str,
    template: str,
    salesforce_id: str,
    description: str,
) -> dict:
    """Create the account's project in the pre-sales group from the custom template
    (`enterprise` or `commercial`), unless `collaboration_project_find` finds it.

    The description carries the account's marker. GitLab wants project names unique in a
    group: when another project already has `name`, `alternative_name` is used. Returns
    the project (id, path_with_namespace, web_url, namespace) and whether it was created.
    A create whose answer was lost (a 502 after GitLab stored it) is found by the lookup
    of the next attempt, never sent twice. GitLab imports the template afterwards, in the
    background: see `collaboration_project_ready`."""
    found = collaboration_project_find(path=path, salesforce_id=salesforce_id)
    if found:
        return {**found, "created": False}
    setting = {
        "enterprise": "GITLAB_ENTERPRISE_TEMPLATE_PROJECT",
        "commercial": "GITLAB_COMMERCIAL_TEMPLATE_PROJECT",
    }[template]
    template_path = required_setting(setting)
    gl = client()
    try:
        template_project = gl.projects.get(template_path)
    except _GetError as exc:
        if exc.response_code == 404:
            raise GitLabError(
                f"The {template} template project {template_path!r} ({setting}) does not "
                "exist in GitLab. Fix the setting or create the template, then retry."
            ) from exc
        raise _gitlab_failure("Reading the template project", exc) from exc
    except (_ClientError, _NoAnswer) as exc:
        raise _gitlab_failure("Reading the template project", exc) from exc
    presales = required_setting("GITLAB_PRESALES_GROUP")
    try:
        group = gl.groups.get(presales)
    except (_ClientError, _NoAnswer) as exc:
        raise _gitlab_failure(f"Reading the pre-sales group {presales!r}", exc) from exc
    data = {
        "name": name,
        "path": path,
        "namespace_id": group.id,
        "description": f"{description}\n\n{project_marker(salesforce_id)}",
        "use_custom_template": True,
        "template_project_id": template_project.id,
        "group_with_project_templates_id": template_project.namespace["id"],
        "visibility": "private",
    }
    for attempt_name in (name, alternative_name):
        try:
            project = gl.projects.create({**data, "name": attempt_name})
        except (_ClientError, _NoAnswer) as exc:
            if _taken(exc, "path"):
                # Made meanwhile by a concurrent attempt: use it if it is the account's.
                again = collaboration_project_find(path=path, salesforce_id=salesforce_id)
                if again:
                    return {**again, "created": False}
            if _taken(exc, "name") and attempt_name != alternative_name:
                continue  # another account's project has this name in the group
            raise _gitlab_failure("Creating the project from the template", exc) from exc
        return {**_project_dict(project.attributes), "created": True}
    raise AssertionError("unreachable")


def collaboration_project_ready(*, project_id: int) -> None:
    """Return once GitLab has finished importing the template into the project.

    Creating from a custom template only schedules the import (`import_status` goes
    scheduled -> started -> finished): until it finished, the template's issues (the
    preloaded "Welcome to GitLab") are not there. Still running: a pending, transient
    GitLabError (the task retries later); failed: a permanent one with
    GitLab's import error."""
    gl = client()
    try:
        status = gl.projects.get(project_id, lazy=True).imports.get()
    except (_ClientError, _NoAnswer) as exc:
        raise _gitlab_failure("Reading the project's import status", exc) from exc
    state = status.attributes.get("import_status") or "none"
    if state in ("none", "finished"):
        return
    if state in IMPORT_RUNNING:
        raise GitLabError(
            f"GitLab is still importing the template into the project (import {state}); "
            "checking again shortly",
            pending=True,
        )
    error = status.attributes.get("import_error") or "no detail given"
    raise GitLabError(
        f"GitLab could not import the template into the project (import {state}: {error}). "
        "Delete the project in GitLab, check the template, then retry."
    )


def collaboration_project_transfer(*, project_id: int) -> dict:
    """Move the project to the account-management group (`project.transfer`); a project
    already there is left alone. A transfer GitLab refuses raises a non-transient
    GitLabError with GitLab's message."""
    target_path = required_setting("GITLAB_ACCOUNT_MANAGEMENT_GROUP")
    gl = client()
    try:
        project = gl.projects.get(project_id)
        target = gl.groups.get(target_path)
    except (_ClientError, _NoAnswer) as exc:
        raise _gitlab_failure("Reading the project and the account-management group", exc) from exc
    if project.namespace["id"] == target.id:
        return _project_dict(project.attributes)
    try:
        project.transfer(target.id)
    except (_ClientError, _NoAnswer) as exc:
        # The answer may be lost after GitLab moved it: read it again before failing.
        try:
            again = gl.projects.get(project_id)
        except (_ClientError, _NoAnswer):
            again = None
        if again is not None and again.namespace["id"] == target.id:
            return _project_dict(again.attributes)
        raise _gitlab_failure(f"Moving the project to {target_path!r}", exc) from exc
    return _project_dict(gl.projects.get(project_id).attributes)


def collaboration_welcome_issue_ensure(*, project_id: int, title: str, description: str) -> dict:
    """The project's "Welcome to GitLab" issue: the one the template preloaded, or a new
    one when the template did not bring it. Returns iid, web_url and whether it was made."""
    gl = client()
    project = gl.projects.get(project_id, lazy=True)
    try:
        for issue in project.issues.list(search=title, state="all", iterator=True):
            if issue.title.strip().lower() == title.lower():
                return {"iid": issue.iid, "web_url": issue.web_url, "created": False}
        issue = project.issues.create({"title": title, "description": description})
    except (_ClientError, _NoAnswer) as exc:
        raise _gitlab_failure("Ensuring the Welcome to GitLab issue", exc) from exc
    return {"iid": issue.iid, "web_url": issue.web_url, "created": True}


def collaboration_issues_open(*, project_id: int) -> list[dict]:
    """The project's open issues with their human (non-system) notes, oldest note first:
    [{"iid", "title", "web_url", "author", "created_at", "notes": [{"author",
    "created_at"}]}]. Timestamps are GitLab's ISO strings."""
    gl = client()
    project = gl.projects.get(project_id, lazy=True)
    result = []
    try:
        for issue in project.issues.list(state="opened", iterator=True):
            notes = [
                {"author": (n.author or {}).get("username", ""), "created_at": n.created_at}
                for n in issue.notes.list(iterator=True, sort="asc", order_by="created_at")
                if not getattr(n, "system", False)
            ]
            result.append(
                {
                    "iid": issue.iid,
                    "title": issue.title,
                    "web_url": issue.web_url,
                    "author": (issue.author or {}).get("username", ""),
                    "created_at": issue.created_at,
                    "notes": notes,
                }
            )
    except (_ClientError, _NoAnswer) as exc:
        raise _gitlab_failure("Reading the project's open issues", exc) from exc
    return result


def current_username() -> str:
    """The username of the token's user (Portfolio's bot account). Asked once per GitLab
    and token for the life of the process (the hourly issue sync asks for every account)."""
    return _token_username(settings.GITLAB_URL, settings.GITLAB_TOKEN)


@functools.lru_cache(maxsize=8)
def _token_username(url: str, token: str) -> str:
    gl = client()
    try:
        gl.auth()
    except (_ClientError, _NoAnswer) as exc:
        raise _gitlab_failure("Reading the token's user", exc) from exc
    return gl.user.username if gl.user else ""
