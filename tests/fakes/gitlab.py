"""A loopback GitLab (REST API v4) for tests and benchmarks.

Speaks the documented shapes that python-gitlab uses: groups, projects (incl. creation
from a custom project template and transfer to another namespace), issues with labels,
milestones, due dates and notes, project and group labels, milestones, issue boards and
their lists, and offset pagination with `X-Total`, `X-Total-Pages`, `X-Next-Page` and
`Link` headers. Authentication is the `PRIVATE-TOKEN` header.

Switches inject failures: `fail_next(status, count, retry_after=...)` answers the next
`count` requests with `status`; `fail_after_commit(count)` performs the next write and
then answers 502, as a proxy timing out after GitLab stored the write does (the case that
makes naive retries create duplicates).

Use the `fake_gitlab` fixture: it starts the server and points settings.GITLAB_* at it.
"""

from __future__ import annotations

import copy
import json
import re
import threading
from collections.abc import Iterator
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
    boards: dict[int, list[dict]] = field(default_factory=dict)
    next_id: int = 1000
    requests: list[tuple[str, str]] = field(default_factory=list)
    failures: list[tuple[int, float | None]] = field(default_factory=list)
    fail_after_commit_count: int = 0

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id


class FakeGitLab:
    """The server; `state` may be inspected and seeded directly by tests."""

    def __init__(self) -> None:
        self.state = FakeGitLabState()
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
            group = {
                "id": gid,
                "name": name or full_path.rsplit("/", 1)[-1],
                "path": full_path.rsplit("/", 1)[-1],
                "full_path": full_path,
                "web_url": f"{self.url}/groups/{full_path}",
            }
            self.state.groups[gid] = group
            self.state.group_labels[gid] = []
            return group

    def add_project(self, path_with_namespace: str, *, description: str = "") -> dict:
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
        return next(
            (
                p
                for p in self.state.projects.values()
                if p["path_with_namespace"] == path_with_namespace
            ),
            None,
        )

    # --- switches ----------------------------------------------------------------------
    def fail_next(self, status: int, count: int = 1, *, retry_after: float | None = None) -> None:
        with self.lock:
            self.state.failures.extend([(status, retry_after)] * count)

    def fail_after_commit(self, count: int = 1) -> None:
        with self.lock:
            self.state.fail_after_commit_count += count

    # --- behaviour ---------------------------------------------------------------------
    def _create_project(self, data: dict) -> dict:
        namespace = self.state.groups.get(int(data.get("namespace_id") or 0))
        if namespace is None:
            raise ApiError(404, {"message": "404 Namespace Not Found"})
        path = data.get("path") or re.sub(r"[^a-z0-9-]+", "-", str(data["name"]).lower()).strip("-")
        full = f"{namespace['full_path']}/{path}"
        if self.project_by_path(full):
            raise ApiError(400, {"message": {"path": ["has already been taken"]}})
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
            "name": data["name"],
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
        }
        self.state.projects[pid] = project
        self.state.issues[pid] = {}
        self.state.project_labels[pid] = []
        self.state.milestones[pid] = []
        self.state.boards[pid] = []
        if data.get("use_custom_template"):
            # A custom template copies the template's issues and labels (GitLab exports
            # and imports the template project).
            for label in self.state.project_labels[int(template_id)]:
                self._create_label(self.state.project_labels[pid], dict(label))
            for issue in self.state.issues[int(template_id)].values():
                self._create_issue(
                    pid,
                    {k: issue[k] for k in ("title", "description")}
                    | {"labels": ",".join(issue["labels"])},
                )
        return project

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
        milestone = next((m for m in self.state.milestones[pid] if m["id"] == int(mid)), None)
        if milestone is None:
            raise ApiError(400, {"message": {"milestone_id": ["is invalid"]}})
        issue["milestone"] = copy.deepcopy(milestone)

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


class ApiError(Exception):
    def __init__(self, status: int, body: dict) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


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
        ("GET", re.compile(r"^/api/v4/projects$"), "list_projects"),
        ("POST", re.compile(r"^/api/v4/projects$"), "create_project"),
        ("GET", re.compile(r"^/api/v4/projects/([^/]+)$"), "get_project"),
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

        def create_group_label(self, ref: str, *, body: dict, **_: Any):
            group = fake._find_group(ref)
            return 201, fake._create_label(fake.state.group_labels[group["id"]], body), {}

        def list_projects(self, *, query: dict, base: str, **_: Any):
            items = list(fake.state.projects.values())
            if query.get("search"):
                needle = query["search"].lower()
                items = [p for p in items if needle in p["name"].lower()]
            return self._list(items, query, base)

        def create_project(self, *, body: dict, **_: Any):
            return 201, copy.deepcopy(fake._create_project(body)), {}

        def get_project(self, ref: str, **_: Any):
            return 200, copy.deepcopy(fake._find_project(ref)), {}

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
            group_labels = fake.state.group_labels.get(project["namespace"]["id"], [])
            return self._list(fake.state.project_labels[project["id"]] + group_labels, query, base)

        def create_label(self, ref: str, *, body: dict, **_: Any):
            project = fake._find_project(ref)
            return 201, fake._create_label(fake.state.project_labels[project["id"]], body), {}

        def list_milestones(self, ref: str, *, query: dict, base: str, **_: Any):
            project = fake._find_project(ref)
            items = fake.state.milestones[project["id"]]
            if query.get("title"):
                items = [m for m in items if m["title"] == query["title"]]
            return self._list(items, query, base)

        def create_milestone(self, ref: str, *, body: dict, **_: Any):
            project = fake._find_project(ref)
            milestones = fake.state.milestones[project["id"]]
            if not body.get("title"):
                raise ApiError(400, {"message": {"title": ["can't be blank"]}})
            if any(m["title"] == body["title"] for m in milestones):
                raise ApiError(400, {"message": {"title": ["has already been taken"]}})
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
            board = {
                "id": fake.state.new_id(),
                "name": body.get("name", "Development"),
                "lists": [],
            }
            fake.state.boards[project["id"]].append(board)
            return 201, copy.deepcopy(board), {}

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
            labels = fake.state.project_labels[project["id"]] + fake.state.group_labels.get(
                project["namespace"]["id"], []
            )
            label = next((lb for lb in labels if lb["id"] == int(body.get("label_id", 0))), None)
            if label is None:
                raise ApiError(400, {"message": {"label_id": ["is invalid"]}})
            if any(item["label"]["id"] == label["id"] for item in board["lists"]):
                raise ApiError(409, {"message": "List already exists"})
            item = {
                "id": fake.state.new_id(),
                "label": dict(label),
                "position": len(board["lists"]),
            }
            board["lists"].append(item)
            return 201, copy.deepcopy(item), {}

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
    settings.GITLAB_ENABLED = True
    settings.GITLAB_TRIAGE_PROJECT = triage["path_with_namespace"]
    settings.GITLAB_PRESALES_GROUP = "customer-success/pre-sales"
    settings.GITLAB_ACCOUNT_MANAGEMENT_GROUP = "customer-success/account-management"
    settings.GITLAB_ENTERPRISE_TEMPLATE_PROJECT = "customer-success/templates/enterprise-template"
    settings.GITLAB_COMMERCIAL_TEMPLATE_PROJECT = "customer-success/templates/commercial-template"
    yield fake
    fake.stop()
