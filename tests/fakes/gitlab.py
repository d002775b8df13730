"""A loopback GitLab (REST API v4) for tests and benchmarks.

Speaks the documented shapes that python-gitlab uses: groups, projects (incl. creation
from a custom project template and transfer to another namespace), issues with labels,
milestones, due dates and notes, project and group labels, milestones, issue boards and
their lists, and offset pagination with `X-Total`, `X-Total-Pages`, `X-Next-Page` and
`Link` headers. Authentication is the `PRIVATE-TOKEN` header.

As in real GitLab:
- a project created from a custom template (`use_custom_template` +
  `template_project_id`) is imported asynchronously: its `import_status` (in the project
  and at `GET /projects/:id/import`) goes `scheduled` -> `started` -> `finished` over
  `import_delay` seconds (0 by default: the create's own answer still says `scheduled`,
  the next request sees `finished`), and the template's labels and issues appear in the
  new project only when it is `finished`;
- project names follow GitLab's name rule and are unique per namespace; paths are unique
  per namespace whatever their case; `search` matches path, name and description;
- group milestones: `GET /projects/:id/milestones?include_ancestors=true` also returns the
  milestones of the project's group and its ancestors (`include_parent_milestones`, the
  deprecated spelling, too; both at once is a 400), an issue may use them, and creating a
  project milestone whose title the project or one of those groups already uses is
  refused with 400 "already being used for another group or project milestone";
- board names are not unique (a second create makes a second board).

Switches inject failures: `fail_next(status, count, retry_after=...)` answers the next
`count` requests with `status`; `fail_after_commit(count)` performs the next write and
then answers 502, as a proxy timing out after GitLab stored the write does (the case that
makes naive retries create duplicates); `fail_creates(status, count, kinds=...)` answers
the next `count` label / board / board-list creates with `status` (before storing them,
or after with `after_commit=True`).

Use the `fake_gitlab` fixture: it starts the server and points settings.GITLAB_* at it.
"""

from __future__ import annotations

import copy
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

import pytest

TOKEN = "glpat-fake-token"


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class FakeGitLabState:
    groups: dict[int, dict] = field(default_factory=dict)
    projects: dict[int, dict] = field(default_factory=dict)
    # project id -> iid -> issue
    issues: dict[int, dict[int, dict]] = field(default_factory=dict)
    notes: dict[tuple[int, int], list[dict]] = field(default_factory=dict)
    project_labels: dict[int, list[dict]] = field(default_factory=dict)
    group_labels: dict[int, list[dict]] = field(default_factory=dict)
    milestones: dict[int, list[dict]] = field(default_factory=dict)
    group_milestones: dict[int, list[dict]] = field(default_factory=dict)
    # project id -> (template project id, monotonic start) while its import runs
    imports: dict[int, tuple[int, float]] = field(default_factory=dict)
    boards: dict[int, list[dict]] = field(default_factory=dict)
    next_id: int = 1000
    requests: list[tuple[str, str]] = field(default_factory=list)
    failures: list[tuple[int, float | None]] = field(default_factory=list)
    fail_after_commit_count: int = 0
    # (status, after_commit, kinds) per injected create failure, in order
    create_failures: list[tuple[int, bool, tuple[str, ...]]] = field(default_factory=list)

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id


class FakeGitLab:
    """The server; `state` may be inspected and seeded directly by tests."""

    def __init__(self, *, import_delay: float = 0.0) -> None:
        self.state = FakeGitLabState()
        # Seconds a template import takes (scheduled for the first half, then started).
        self.import_delay = import_delay
        # False: behave as GitLab before 16.7, which ignores the milestones API's
        # include_ancestors and knows only include_parent_milestones.
        self.knows_include_ancestors = True
        self.lock = threading.RLock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeGitLab:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # --- seeding -----------------------------------------------------------------------
    def add_group(self, full_path: str, name: str | None = None) -> dict:
        with self.lock:
            gid = self.state.new_id()
            parent = self.group_by_path(full_path.rpartition("/")[0]) if "/" in full_path else None
            group = {
                "id": gid,
                "name": name or full_path.rsplit("/", 1)[-1],
                "path": full_path.rsplit("/", 1)[-1],
                "full_path": full_path,
                "parent_id": parent["id"] if parent else None,
                "web_url": f"{self.url}/groups/{full_path}",
            }
            self.state.groups[gid] = group
            self.state.group_labels[gid] = []
            self.state.group_milestones[gid] = []
            return group

    def add_group_milestone(self, full_path: str, title: str, **fields: Any) -> dict:
        """A milestone of the group `full_path` (seeding, as a person made it on GitLab)."""
        with self.lock:
            group = self.group_by_path(full_path) or self.add_group(full_path)
            return self._create_group_milestone(group, {"title": title, **fields})

    def ancestors(self, group: dict | None) -> list[dict]:
        """The group and its ancestors, nearest first."""
        chain = []
        while group is not None:
            chain.append(group)
            group = self.state.groups.get(group.get("parent_id") or 0)
        return chain

    def add_project(self, path_with_namespace: str, *, description: str = "") -> dict:
        """A project made by hand (no template, nothing to import)."""
        with self.lock:
            namespace_path, _, path = path_with_namespace.rpartition("/")
            group = self.group_by_path(namespace_path) or self.add_group(namespace_path)
            return self._create_project(
                {
                    "name": path,
                    "path": path,
                    "namespace_id": group["id"],
                    "description": description,
                }
            )

    def group_by_path(self, full_path: str) -> dict | None:
        return next((g for g in self.state.groups.values() if g["full_path"] == full_path), None)

    def project_by_path(self, path_with_namespace: str) -> dict | None:
        # GitLab routes are case-insensitive.
        wanted = path_with_namespace.lower()
        return next(
            (p for p in self.state.projects.values() if p["path_with_namespace"].lower() == wanted),
            None,
        )

    # --- switches ----------------------------------------------------------------------
    def fail_next(self, status: int, count: int = 1, *, retry_after: float | None = None) -> None:
        with self.lock:
            self.state.failures.extend([(status, retry_after)] * count)

    def fail_after_commit(self, count: int = 1) -> None:
        with self.lock:
            self.state.fail_after_commit_count += count

    def fail_creates(
        self,
        status: int = 503,
        count: int = 1,
        *,
        kinds: tuple[str, ...] = ("label", "board", "board_list"),
        after_commit: bool = False,
    ) -> None:
        """The next `count` creates of these kinds (label, board, board_list) answer
        `status`: before storing anything, or after storing it (`after_commit`)."""
        with self.lock:
            self.state.create_failures.extend([(status, after_commit, kinds)] * count)

    def _create_failure(self, kind: str) -> tuple[int, bool] | None:
        failures = self.state.create_failures
        for i, (status, after_commit, kinds) in enumerate(failures):
            if kind in kinds:
                del failures[i]
                return status, after_commit
        return None

    # --- behaviour ---------------------------------------------------------------------
    def _create_project(self, data: dict) -> dict:
        namespace = self.state.groups.get(int(data.get("namespace_id") or 0))
        if namespace is None:
            raise ApiError(404, {"message": "404 Namespace Not Found"})
        name = str(data.get("name") or data.get("path") or "")
        path = data.get("path") or re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")
        full = f"{namespace['full_path']}/{path}"
        errors: dict[str, list[str]] = {}
        if not PROJECT_NAME_RE.match(name):
            errors["name"] = [PROJECT_NAME_MESSAGE]
        elif any(
            p["name"] == name and p["namespace"]["id"] == namespace["id"]
            for p in self.state.projects.values()
        ):
            errors["name"] = ["has already been taken"]
        if not PROJECT_PATH_RE.match(path):
            errors["path"] = [PROJECT_PATH_MESSAGE]
        elif self.project_by_path(full):
            errors["path"] = ["has already been taken"]
        if errors:
            raise ApiError(400, {"message": errors})
        template_id = data.get("template_project_id")
        if data.get("use_custom_template"):
            template = self.state.projects.get(int(template_id or 0))
            if template is None:
                raise ApiError(
                    400, {"message": {"template_project_id": ["is not a valid template project"]}}
                )
        pid = self.state.new_id()
        project = {
            "id": pid,
            "name": name,
            "path": path,
            "path_with_namespace": full,
            "description": data.get("description", ""),
            "namespace": {
                "id": namespace["id"],
                "full_path": namespace["full_path"],
                "kind": "group",
            },
            "web_url": f"{self.url}/{full}",
            "created_at": _now(),
            "visibility": data.get("visibility", "private"),
            "created_from_template_id": int(template_id) if template_id else None,
            "archived": False,
            "import_status": "none",
            "import_type": None,
            "import_error": None,
        }
        self.state.projects[pid] = project
        self.state.issues[pid] = {}
        self.state.project_labels[pid] = []
        self.state.milestones[pid] = []
        self.state.boards[pid] = []
        if data.get("use_custom_template"):
            # GitLab exports the template and imports it into the new project in the
            # background: nothing of the template is there until the import finished.
            project["import_status"] = "scheduled"
            project["import_type"] = "gitlab_custom_project_template"
            self.state.imports[pid] = (int(template_id), time.monotonic())
        return project

    def advance_imports(self) -> None:
        """Move each running template import on by the time elapsed (every request does)."""
        with self.lock:
            now = time.monotonic()
            for pid, (template_id, started) in list(self.state.imports.items()):
                project = self.state.projects.get(pid)
                if project is None:
                    del self.state.imports[pid]
                    continue
                elapsed = now - started
                if elapsed < self.import_delay / 2:
                    project["import_status"] = "scheduled"
                elif elapsed < self.import_delay:
                    project["import_status"] = "started"
                else:
                    self._finish_import(pid, template_id)

    def _finish_import(self, pid: int, template_id: int) -> None:
        # A custom template copies the template's labels and issues.
        for label in self.state.project_labels.get(template_id, []):
            self._create_label(self.state.project_labels[pid], dict(label))
        for issue in self.state.issues.get(template_id, {}).values():
            self._create_issue(
                pid,
                {k: issue[k] for k in ("title", "description")}
                | {"labels": ",".join(issue["labels"])},
            )
        self.state.projects[pid]["import_status"] = "finished"
        del self.state.imports[pid]

    def _find_project(self, ref: str) -> dict:
        ref = unquote(ref)
        project = self.state.projects.get(int(ref)) if ref.isdigit() else self.project_by_path(ref)
        if project is None:
            raise ApiError(404, {"message": "404 Project Not Found"})
        return project

    def _find_group(self, ref: str) -> dict:
        ref = unquote(ref)
        group = self.state.groups.get(int(ref)) if ref.isdigit() else self.group_by_path(ref)
        if group is None:
            raise ApiError(404, {"message": "404 Group Not Found"})
        return group

    def _create_label(self, labels: list[dict], data: dict) -> dict:
        name = data.get("name")
        if not name:
            raise ApiError(400, {"message": {"name": ["can't be blank"]}})
        if any(label["name"] == name for label in labels):
            raise ApiError(409, {"message": "Label already exists"})
        label = {
            "id": self.state.new_id(),
            "name": name,
            "color": data.get("color", "#428BCA"),
            "description": data.get("description"),
        }
        labels.append(label)
        return label

    def _labels_for(self, project: dict) -> list[dict]:
        """The project's labels and its groups' (GitLab's include_ancestor_groups default)."""
        labels = list(self.state.project_labels[project["id"]])
        for group in self.ancestors(self.state.groups.get(project["namespace"]["id"])):
            labels += self.state.group_labels.get(group["id"], [])
        return labels

    def _labels_of(self, value: Any) -> list[str]:
        if value is None:
            return []
        if isinstance(value, list):
            return [str(v) for v in value if v]
        return [v.strip() for v in str(value).split(",") if v.strip()]

    def _create_issue(self, pid: int, data: dict) -> dict:
        if not data.get("title"):
            raise ApiError(400, {"message": {"title": ["can't be blank"]}})
        issues = self.state.issues[pid]
        iid = max(issues, default=0) + 1
        issue = {
            "id": self.state.new_id(),
            "iid": iid,
            "project_id": pid,
            "title": data["title"],
            "description": data.get("description", ""),
            "state": "opened",
            "labels": self._labels_of(data.get("labels")),
            "milestone": None,
            "due_date": data.get("due_date"),
            "created_at": _now(),
            "updated_at": _now(),
            "closed_at": None,
            "web_url": f"{self.state.projects[pid]['web_url']}/-/issues/{iid}",
            "user_notes_count": 0,
            "author": {"id": 1, "username": "portfolio-bot", "name": "Portfolio"},
        }
        self._apply_milestone(pid, issue, data)
        issues[iid] = issue
        return issue

    def _apply_milestone(self, pid: int, issue: dict, data: dict) -> None:
        if "milestone_id" not in data:
            return
        mid = data.get("milestone_id")
        if mid in (None, "", 0, "0"):
            issue["milestone"] = None
            return
        milestone = next((m for m in self._milestones_for(pid, True) if m["id"] == int(mid)), None)
        if milestone is None:
            raise ApiError(400, {"message": {"milestone_id": ["is invalid"]}})
        issue["milestone"] = copy.deepcopy(milestone)

    def _milestones_for(self, pid: int, include_ancestors: bool) -> list[dict]:
        items = list(self.state.milestones[pid])
        if include_ancestors:
            group = self.state.groups.get(self.state.projects[pid]["namespace"]["id"])
            for ancestor in self.ancestors(group):
                items += self.state.group_milestones.get(ancestor["id"], [])
        return items

    def _create_group_milestone(self, group: dict, data: dict) -> dict:
        milestones = self.state.group_milestones[group["id"]]
        milestone = {
            "id": self.state.new_id(),
            "iid": len(milestones) + 1,
            "group_id": group["id"],
            "title": data["title"],
            "description": data.get("description", ""),
            "start_date": data.get("start_date"),
            "due_date": data.get("due_date"),
            "state": "active",
            "web_url": f"{group['web_url']}/-/milestones/{len(milestones) + 1}",
        }
        milestones.append(milestone)
        return milestone

    def _update_issue(self, pid: int, iid: int, data: dict) -> dict:
        issue = self.state.issues[pid].get(iid)
        if issue is None:
            raise ApiError(404, {"message": "404 Issue Not Found"})
        for key in ("title", "description", "due_date"):
            if key in data:
                issue[key] = data[key]
        if "labels" in data:
            issue["labels"] = self._labels_of(data["labels"])
        if "add_labels" in data:
            issue["labels"] += [
                n for n in self._labels_of(data["add_labels"]) if n not in issue["labels"]
            ]
        if "remove_labels" in data:
            removed = set(self._labels_of(data["remove_labels"]))
            issue["labels"] = [n for n in issue["labels"] if n not in removed]
        self._apply_milestone(pid, issue, data)
        event = data.get("state_event")
        if event == "close":
            issue["state"], issue["closed_at"] = "closed", _now()
        elif event == "reopen":
            issue["state"], issue["closed_at"] = "opened", None
        issue["updated_at"] = _now()
        return issue


# GitLab's project name and path rules (lib/gitlab/regex.rb, lib/gitlab/path_regex.rb).
PROJECT_NAME_RE = re.compile(r"^\w[\w\-\u2010-\u2015+. ]*$")
PROJECT_NAME_MESSAGE = (
    "can contain only letters, digits, emoji, '_', '.', '+', dashes, or spaces. "
    "It must start with a letter, digit, emoji, or '_'."
)
PROJECT_PATH_RE = re.compile(r"^[a-zA-Z0-9_.][a-zA-Z0-9_\-.]*(?<!\.git)(?<!\.atom)$")
PROJECT_PATH_MESSAGE = (
    "can contain only letters, digits, '_', '-' and '.'. Cannot start with '-', end in "
    "'.git' or end in '.atom'"
)
MILESTONE_TAKEN = "already being used for another group or project milestone."


class ApiError(Exception):
    def __init__(self, status: int, body: dict) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


def _true(value: str | None) -> bool:
    return str(value).lower() in ("true", "1", "yes", "t", "on")


def _search_projects(items: list[dict], search: str | None) -> list[dict]:
    """GitLab's project `search`: a case-insensitive substring of path, name or description."""
    if not search:
        return items
    needle = search.lower()
    return [
        p
        for p in items
        if any(needle in (p.get(k) or "").lower() for k in ("path", "name", "description"))
    ]


def _paginate(items: list, query: dict[str, str], base: str) -> tuple[list, dict[str, str]]:
    page = max(int(query.get("page", "1") or 1), 1)
    per_page = min(max(int(query.get("per_page", "20") or 20), 1), 100)
    total = len(items)
    pages = max((total + per_page - 1) // per_page, 1)
    chunk = items[(page - 1) * per_page : page * per_page]
    headers = {
        "X-Total": str(total),
        "X-Total-Pages": str(pages),
        "X-Per-Page": str(per_page),
        "X-Page": str(page),
        "X-Next-Page": str(page + 1) if page < pages else "",
        "X-Prev-Page": str(page - 1) if page > 1 else "",
    }
    links = []

    def link(p: int, rel: str) -> str:
        return f'<{base}?{urlencode({**query, "page": p, "per_page": per_page})}>; rel="{rel}"'

    if page < pages:
        links.append(link(page + 1, "next"))
    if page > 1:
        links.append(link(page - 1, "prev"))
    links += [link(1, "first"), link(pages, "last")]
    headers["Link"] = ", ".join(links)
    return chunk, headers


def _make_handler(fake: FakeGitLab) -> type[BaseHTTPRequestHandler]:
    routes: list[tuple[str, re.Pattern, str]] = [
        ("GET", re.compile(r"^/api/v4/user$"), "current_user"),
        ("GET", re.compile(r"^/api/v4/groups/([^/]+)$"), "get_group"),
        ("GET", re.compile(r"^/api/v4/groups/([^/]+)/labels$"), "list_group_labels"),
        ("POST", re.compile(r"^/api/v4/groups/([^/]+)/labels$"), "create_group_label"),
        ("GET", re.compile(r"^/api/v4/groups/([^/]+)/projects$"), "list_group_projects"),
        ("GET", re.compile(r"^/api/v4/groups/([^/]+)/milestones$"), "list_group_milestones"),
        ("POST", re.compile(r"^/api/v4/groups/([^/]+)/milestones$"), "create_group_milestone"),
        ("GET", re.compile(r"^/api/v4/projects$"), "list_projects"),
        ("POST", re.compile(r"^/api/v4/projects$"), "create_project"),
        ("GET", re.compile(r"^/api/v4/projects/([^/]+)$"), "get_project"),
        ("PUT", re.compile(r"^/api/v4/projects/([^/]+)$"), "update_project"),
        ("GET", re.compile(r"^/api/v4/projects/([^/]+)/import$"), "get_import"),
        ("PUT", re.compile(r"^/api/v4/projects/([^/]+)/transfer$"), "transfer_project"),
        ("GET", re.compile(r"^/api/v4/projects/([^/]+)/issues$"), "list_issues"),
        ("POST", re.compile(r"^/api/v4/projects/([^/]+)/issues$"), "create_issue"),
        ("GET", re.compile(r"^/api/v4/projects/([^/]+)/issues/(\d+)$"), "get_issue"),
        ("PUT", re.compile(r"^/api/v4/projects/([^/]+)/issues/(\d+)$"), "update_issue"),
        ("GET", re.compile(r"^/api/v4/projects/([^/]+)/issues/(\d+)/notes$"), "list_notes"),
        ("POST", re.compile(r"^/api/v4/projects/([^/]+)/issues/(\d+)/notes$"), "create_note"),
        ("GET", re.compile(r"^/api/v4/projects/([^/]+)/labels$"), "list_labels"),
        ("POST", re.compile(r"^/api/v4/projects/([^/]+)/labels$"), "create_label"),
        ("GET", re.compile(r"^/api/v4/projects/([^/]+)/milestones$"), "list_milestones"),
        ("POST", re.compile(r"^/api/v4/projects/([^/]+)/milestones$"), "create_milestone"),
        ("GET", re.compile(r"^/api/v4/projects/([^/]+)/boards$"), "list_boards"),
        ("POST", re.compile(r"^/api/v4/projects/([^/]+)/boards$"), "create_board"),
        ("GET", re.compile(r"^/api/v4/projects/([^/]+)/boards/(\d+)/lists$"), "list_board_lists"),
        (
            "POST",
            re.compile(r"^/api/v4/projects/([^/]+)/boards/(\d+)/lists$"),
            "create_board_list",
        ),
    ]

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet tests
            pass

        def do_GET(self) -> None:  # noqa: N802
            self._dispatch("GET")

        def do_POST(self) -> None:  # noqa: N802
            self._dispatch("POST")

        def do_PUT(self) -> None:  # noqa: N802
            self._dispatch("PUT")

        def do_DELETE(self) -> None:  # noqa: N802
            self._dispatch("DELETE")

        # -- plumbing --------------------------------------------------------------------
        def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(payload)

        def _body(self) -> dict:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if not raw:
                return {}
            ctype = self.headers.get("Content-Type", "")
            if "json" in ctype:
                return json.loads(raw)
            return {k: v[-1] for k, v in parse_qs(raw.decode()).items()}

        def _dispatch(self, method: str) -> None:
            parts = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            body = self._body() if method in ("POST", "PUT") else {}
            fake.advance_imports()
            with fake.lock:
                fake.state.requests.append((method, parts.path))
                if fake.state.failures:
                    status, retry_after = fake.state.failures.pop(0)
                    headers = (
                        {"Retry-After": str(int(retry_after))} if retry_after is not None else {}
                    )
                    self._send(status, {"message": f"{status} injected"}, headers)
                    return
            if self.headers.get("PRIVATE-TOKEN") != TOKEN:
                self._send(401, {"message": "401 Unauthorized"})
                return
            path = parts.path.replace("%2F", "/").replace("%2f", "/")
            # Project/group references may be URL-encoded paths: match on the raw path so
            # the id segment stays one segment.
            found = next(
                (
                    (name, m)
                    for route_method, pattern, name in routes
                    if route_method == method and (m := pattern.match(parts.path))
                ),
                None,
            )
            if found is None:
                self._send(404, {"error": "404 Not Found", "path": path})
                return
            name, match = found
            try:
                with fake.lock:
                    status, result, headers = getattr(self, name)(
                        *match.groups(), query=query, body=body, base=parts.path
                    )
                    commit_then_fail = method in ("POST", "PUT") and (
                        fake.state.fail_after_commit_count > 0
                    )
                    if commit_then_fail:
                        fake.state.fail_after_commit_count -= 1
            except ApiError as exc:
                self._send(exc.status, exc.body)
                return
            if commit_then_fail:
                self._send(502, {"message": "502 Bad Gateway"})
                return
            self._send(status, result, headers)

        def _list(self, items: list, query: dict, base: str) -> tuple[int, list, dict]:
            chunk, headers = _paginate(items, query, f"{fake.url}{base}")
            return 200, copy.deepcopy(chunk), headers

        # -- endpoints -------------------------------------------------------------------
        def current_user(self, **_: Any) -> tuple[int, Any, dict]:
            return 200, {"id": 1, "username": "portfolio-bot", "name": "Portfolio"}, {}

        def get_group(self, ref: str, **_: Any) -> tuple[int, Any, dict]:
            return 200, copy.deepcopy(fake._find_group(ref)), {}

        def list_group_labels(self, ref: str, *, query: dict, base: str, **_: Any):
            group = fake._find_group(ref)
            return self._list(fake.state.group_labels[group["id"]], query, base)

        def _created(self, kind: str, make: Callable[[], dict]) -> tuple[int, Any, dict]:
            """Make the object, unless a `fail_creates` switch answers 5xx first (or after)."""
            failure = fake._create_failure(kind)
            if failure is not None and not failure[1]:
                raise ApiError(failure[0], {"message": f"{failure[0]} injected"})
            made = make()
            if failure is not None:
                raise ApiError(failure[0], {"message": f"{failure[0]} injected after commit"})
            return 201, copy.deepcopy(made), {}

        def create_group_label(self, ref: str, *, body: dict, **_: Any):
            group = fake._find_group(ref)
            labels = fake.state.group_labels[group["id"]]
            return self._created("label", lambda: fake._create_label(labels, body))

        def list_group_projects(self, ref: str, *, query: dict, base: str, **_: Any):
            group = fake._find_group(ref)
            if _true(query.get("include_subgroups")):
                ids = {g["id"] for g in fake.state.groups.values() if group in fake.ancestors(g)}
            else:
                ids = {group["id"]}
            items = [p for p in fake.state.projects.values() if p["namespace"]["id"] in ids]
            return self._list(_search_projects(items, query.get("search")), query, base)

        def list_group_milestones(self, ref: str, *, query: dict, base: str, **_: Any):
            group = fake._find_group(ref)
            groups = fake.ancestors(group) if _true(query.get("include_ancestors")) else [group]
            items = [m for g in groups for m in fake.state.group_milestones[g["id"]]]
            if query.get("title"):
                items = [m for m in items if m["title"] == query["title"]]
            return self._list(items, query, base)

        def create_group_milestone(self, ref: str, *, body: dict, **_: Any):
            group = fake._find_group(ref)
            if not body.get("title"):
                raise ApiError(400, {"message": "title is missing"})
            return 201, copy.deepcopy(fake._create_group_milestone(group, body)), {}

        def list_projects(self, *, query: dict, base: str, **_: Any):
            items = list(fake.state.projects.values())
            return self._list(_search_projects(items, query.get("search")), query, base)

        def create_project(self, *, body: dict, **_: Any):
            return 201, copy.deepcopy(fake._create_project(body)), {}

        def get_project(self, ref: str, **_: Any):
            return 200, copy.deepcopy(fake._find_project(ref)), {}

        def update_project(self, ref: str, *, body: dict, **_: Any):
            project = fake._find_project(ref)
            for key in ("description", "visibility"):
                if key in body:
                    project[key] = body[key]
            return 200, copy.deepcopy(project), {}

        def get_import(self, ref: str, **_: Any):
            project = fake._find_project(ref)
            keys = ("id", "name", "path", "path_with_namespace", "import_status", "import_type")
            return (
                200,
                {k: project[k] for k in keys}
                | {"import_error": project["import_error"], "failed_relations": []},
                {},
            )

        def transfer_project(self, ref: str, *, body: dict, **_: Any):
            project = fake._find_project(ref)
            target = fake._find_group(str(body.get("namespace", "")))
            full = f"{target['full_path']}/{project['path']}"
            if fake.project_by_path(full):
                raise ApiError(400, {"message": "Project with same path in target namespace"})
            project["namespace"] = {
                "id": target["id"],
                "full_path": target["full_path"],
                "kind": "group",
            }
            project["path_with_namespace"] = full
            project["web_url"] = f"{fake.url}/{full}"
            return 200, copy.deepcopy(project), {}

        def list_issues(self, ref: str, *, query: dict, base: str, **_: Any):
            project = fake._find_project(ref)
            items = sorted(
                fake.state.issues[project["id"]].values(), key=lambda i: i["iid"], reverse=True
            )
            state = query.get("state", "all")
            if state in ("opened", "closed"):
                items = [i for i in items if i["state"] == state]
            if query.get("labels"):
                wanted = set(fake._labels_of(query["labels"]))
                items = [i for i in items if wanted <= set(i["labels"])]
            if query.get("search"):
                needle = query["search"].lower()
                items = [
                    i
                    for i in items
                    if needle in i["title"].lower() or needle in (i["description"] or "").lower()
                ]
            if query.get("updated_after"):
                items = [i for i in items if i["updated_at"] > query["updated_after"]]
            return self._list(items, query, base)

        def create_issue(self, ref: str, *, body: dict, **_: Any):
            project = fake._find_project(ref)
            return 201, copy.deepcopy(fake._create_issue(project["id"], body)), {}

        def get_issue(self, ref: str, iid: str, **_: Any):
            project = fake._find_project(ref)
            issue = fake.state.issues[project["id"]].get(int(iid))
            if issue is None:
                raise ApiError(404, {"message": "404 Issue Not Found"})
            return 200, copy.deepcopy(issue), {}

        def update_issue(self, ref: str, iid: str, *, body: dict, **_: Any):
            project = fake._find_project(ref)
            return 200, copy.deepcopy(fake._update_issue(project["id"], int(iid), body)), {}

        def list_notes(self, ref: str, iid: str, *, query: dict, base: str, **_: Any):
            project = fake._find_project(ref)
            return self._list(fake.state.notes.get((project["id"], int(iid)), []), query, base)

        def create_note(self, ref: str, iid: str, *, body: dict, **_: Any):
            project = fake._find_project(ref)
            issue = fake.state.issues[project["id"]].get(int(iid))
            if issue is None:
                raise ApiError(404, {"message": "404 Issue Not Found"})
            if not body.get("body"):
                raise ApiError(400, {"message": {"body": ["can't be blank"]}})
            note = {
                "id": fake.state.new_id(),
                "body": body["body"],
                "created_at": _now(),
                "author": {"id": 1, "username": "portfolio-bot", "name": "Portfolio"},
                "system": False,
            }
            fake.state.notes.setdefault((project["id"], int(iid)), []).append(note)
            issue["user_notes_count"] += 1
            issue["updated_at"] = _now()
            return 201, copy.deepcopy(note), {}

        def list_labels(self, ref: str, *, query: dict, base: str, **_: Any):
            project = fake._find_project(ref)
            return self._list(fake._labels_for(project), query, base)

        def create_label(self, ref: str, *, body: dict, **_: Any):
            project = fake._find_project(ref)
            labels = fake.state.project_labels[project["id"]]
            return self._created("label", lambda: fake._create_label(labels, body))

        def list_milestones(self, ref: str, *, query: dict, base: str, **_: Any):
            project = fake._find_project(ref)
            if not fake.knows_include_ancestors:
                query = {k: v for k, v in query.items() if k != "include_ancestors"}
            if "include_ancestors" in query and "include_parent_milestones" in query:
                exclusive = "include_ancestors, include_parent_milestones are mutually exclusive"
                raise ApiError(400, {"error": exclusive})
            ancestors = _true(query.get("include_ancestors")) or _true(
                query.get("include_parent_milestones")
            )
            items = fake._milestones_for(project["id"], ancestors)
            if query.get("title"):
                items = [m for m in items if m["title"] == query["title"]]
            return self._list(items, query, base)

        def create_milestone(self, ref: str, *, body: dict, **_: Any):
            project = fake._find_project(ref)
            milestones = fake.state.milestones[project["id"]]
            if not body.get("title"):
                raise ApiError(400, {"error": "title is missing"})
            # Titles are unique across the project and its group's hierarchy.
            if any(m["title"] == body["title"] for m in fake._milestones_for(project["id"], True)):
                refused = f'Failed to create milestone {{:title=>["{MILESTONE_TAKEN}"]}}'
                raise ApiError(400, {"message": refused})
            milestone = {
                "id": fake.state.new_id(),
                "iid": len(milestones) + 1,
                "project_id": project["id"],
                "title": body["title"],
                "description": body.get("description", ""),
                "start_date": body.get("start_date"),
                "due_date": body.get("due_date"),
                "state": "active",
            }
            milestones.append(milestone)
            return 201, copy.deepcopy(milestone), {}

        def list_boards(self, ref: str, *, query: dict, base: str, **_: Any):
            project = fake._find_project(ref)
            return self._list(fake.state.boards[project["id"]], query, base)

        def create_board(self, ref: str, *, body: dict, **_: Any):
            project = fake._find_project(ref)

            def make() -> dict:
                # Board names are not unique in GitLab: a second create is a second board.
                board = {
                    "id": fake.state.new_id(),
                    "name": body.get("name", "Development"),
                    "lists": [],
                }
                fake.state.boards[project["id"]].append(board)
                return board

            return self._created("board", make)

        def _board(self, ref: str, board_id: str) -> dict:
            project = fake._find_project(ref)
            board = next(
                (b for b in fake.state.boards[project["id"]] if b["id"] == int(board_id)), None
            )
            if board is None:
                raise ApiError(404, {"message": "404 Board Not Found"})
            return board

        def list_board_lists(self, ref: str, board_id: str, *, query: dict, base: str, **_: Any):
            return self._list(self._board(ref, board_id)["lists"], query, base)

        def create_board_list(self, ref: str, board_id: str, *, body: dict, **_: Any):
            board = self._board(ref, board_id)
            project = fake._find_project(ref)
            labels = fake._labels_for(project)
            label = next((lb for lb in labels if lb["id"] == int(body.get("label_id", 0))), None)
            if label is None:
                raise ApiError(400, {"message": {"label_id": ["is invalid"]}})
            if any(item["label"]["id"] == label["id"] for item in board["lists"]):
                raise ApiError(409, {"message": "List already exists"})

            def make() -> dict:
                item = {
                    "id": fake.state.new_id(),
                    "label": dict(label),
                    "position": len(board["lists"]),
                }
                board["lists"].append(item)
                return item

            return self._created("board_list", make)

    return Handler


@pytest.fixture
def fake_gitlab(settings) -> Iterator[FakeGitLab]:
    """A running fake GitLab with the groups and projects Portfolio expects, and settings
    pointing at it: the Account Triage project, the pre-sales and account-management
    groups, and the Enterprise and Commercial template projects (each with a preloaded
    "Welcome to GitLab" issue)."""
    fake = FakeGitLab().start()
    fake.add_group("customer-success")
    triage = fake.add_project("customer-success/account-triage")
    fake.add_group("customer-success/pre-sales")
    fake.add_group("customer-success/account-management")
    templates = fake.add_group("customer-success/templates")
    for name in ("enterprise-template", "commercial-template"):
        template = fake.add_project(f"{templates['full_path']}/{name}")
        fake._create_issue(
            template["id"],
            {"title": "Welcome to GitLab", "description": "PLEASE-READ: how we work together."},
        )
    settings.GITLAB_URL = fake.url
    settings.GITLAB_TOKEN = TOKEN
    settings.GITLAB_TRIAGE_PROJECT = triage["path_with_namespace"]
    settings.GITLAB_PRESALES_GROUP = "customer-success/pre-sales"
    settings.GITLAB_ACCOUNT_MANAGEMENT_GROUP = "customer-success/account-management"
    settings.GITLAB_ENTERPRISE_TEMPLATE_PROJECT = "customer-success/templates/enterprise-template"
    settings.GITLAB_COMMERCIAL_TEMPLATE_PROJECT = "customer-success/templates/commercial-template"
    yield fake
    fake.stop()
