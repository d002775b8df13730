"""A loopback Salesforce (REST API + SOAP login) over real HTTPS, for tests and benchmarks.

It speaks the documented shapes simple-salesforce relies on:

- `GET /services/data/vXX.X/query?q=SOQL` and `/queryAll`: `{"totalSize", "done",
  "nextRecordsUrl", "records"}`, each record with `attributes` (`type`, `url`); further pages
  at `nextRecordsUrl` (`/services/data/vXX.X/query/<locator>-<offset>`).
- A small SOQL subset: `SELECT f1, f2, Rel.Field FROM Obj [WHERE a > X AND b = 'y']
  [ORDER BY f [ASC|DESC], ...] [LIMIT n]`, and `SELECT COUNT() FROM Obj [WHERE ...]`.
  Relationship fields (`Owner.Email`, `Account.Name`, `Technical_Account_Manager__r.Email`)
  are nested objects with their own `attributes`, or null.
- `PATCH /services/data/vXX.X/sobjects/<Obj>/<Id>` (204; bumps `SystemModstamp`).
- `PATCH /services/data/vXX.X/composite/sobjects` (sObject Collections update): 200 with a
  SaveResult per record in request order, `{"id", "success", "errors": [{"statusCode",
  "message", "fields"}]}` (no `id` for a record that is not there); per-record
  `MALFORMED_ID`, `INVALID_CROSS_REFERENCE_KEY` (no such record), `ENTITY_IS_DELETED`
  (`delete()`d), refusals and row locks; `allOrNone: true` rolls all back. Whole-request
  400s: more than 200 records (`EXCEEDED_ID_LIMIT`), an unknown field (`INVALID_FIELD`),
  bad JSON (`JSON_PARSER_ERROR`).
- Bulk API 2.0 ingest, operation update: `POST jobs/ingest`, `PUT jobs/ingest/<id>/batches`
  (CSV, once), `PATCH jobs/ingest/<id>` (`UploadComplete` / `Aborted`), `GET
  jobs/ingest/<id>` (InProgress, then JobComplete: as Salesforce does, the job is
  processed in the background, by a thread that starts `bulk_delay` seconds after the
  upload completes and applies the updates; Failed with `errorMessage` for an unknown
  column), `GET .../successfulResults/`, `failedResults/` (`sf__Error` as
  `CODE:message:fields`), `unprocessedrecords/`, in no particular order. `#N/A` nulls a
  field, an empty cell leaves it alone.
- `POST /services/Soap/u/XX.X`: the partner SOAP `login` (username + password + token),
  answering `sessionId` and `serverUrl` as simple_salesforce.login.soap_login parses them.
- `Sforce-Limit-Info: api-usage=used/limit` on every REST answer.
- Errors as Salesforce sends them, a JSON array `[{"message", "errorCode"}]`:
  `INVALID_SESSION_ID` (401), `REQUEST_LIMIT_EXCEEDED` (403, also when `api_limit` is
  reached), `MALFORMED_QUERY` / `INVALID_FIELD` (400), `NOT_FOUND` (404).

Switches for failure tests: `fail_next(status, count, error_code=..., retry_after=...)`,
`timeout_next(count, seconds)` (answers late, so the client times out), `expire_sessions()`
(the next REST call gets 401), `expire_sessions_after(n)`, `pause()` / `resume()` (hold
every request), `delay`, `drop_next(count, after=0)` (a query response cut off mid-body;
`dropped` lists their paths), `refuse_records({id: (statusCode, message)})` and
`lock_rows_next(ids)` (UNABLE_TO_LOCK_ROW once) for every write API, `delete(obj, id)`,
`bulk_delay`. Every successful record write lands in `patches`; `write_requests` lists
`(api, n_records)` per write request answered (api: sobject, collection, bulk2) and
`write_calls(api)` counts them.

The TLS certificate comes from a throwaway `trustme` CA; clients trust it through
`REQUESTS_CA_BUNDLE` (the `fake_salesforce` fixture sets it).
"""

from __future__ import annotations

import csv
import io
import json
import re
import secrets
import ssl
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import trustme

API_VERSION_RE = r"v(?P<version>\d+\.\d)"
ORG_ID = "00D000000000001AAA"
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)

# Fields each object has (a query naming another field gets INVALID_FIELD, as in a real org).
SCHEMA: dict[str, set[str]] = {
    "User": {"Id", "Name", "Email", "IsActive", "SystemModstamp"},
    "Account": {
        "Id",
        "Name",
        "ParentId",
        "OwnerId",
        "ARR__c",
        "Region__c",
        "Sales_Segment__c",
        "Technical_Account_Manager__c",
        "Health_Score__c",
        "CSM_Priority__c",
        "Renewal_Date__c",
        "Customer_Since__c",
        "GitLab_Plan__c",
        "Digital_Only__c",
        "LAM__c",
        "Licensed_Seats__c",
        "SystemModstamp",
    },
    "Opportunity": {
        "Id",
        "AccountId",
        "Name",
        "Type",
        "StageName",
        "CloseDate",
        "Amount",
        "IsClosed",
        "IsWon",
        "SystemModstamp",
    },
}
ID_PREFIX = {"User": "005", "Account": "001", "Opportunity": "006"}
# Relationship name -> (lookup field, target object).
RELATIONSHIPS: dict[str, dict[str, tuple[str, str]]] = {
    "Account": {
        "Owner": ("OwnerId", "User"),
        "Parent": ("ParentId", "Account"),
        "Technical_Account_Manager__r": ("Technical_Account_Manager__c", "User"),
    },
    "Opportunity": {"Account": ("AccountId", "Account")},
    "User": {},
}


def format_datetime(value: datetime) -> str:
    """Salesforce's datetime format: 2026-01-01T00:00:00.000+0000."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + "000+0000"


class SoqlError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class Condition:
    field: str
    op: str
    value: Any


@dataclass
class Soql:
    obj: str
    fields: list[str]
    count: bool
    where: list[Condition]
    order: list[tuple[str, bool]]  # (field, descending)
    limit: int | None


_SOQL_RE = re.compile(
    r"^\s*SELECT\s+(?P<fields>.+?)\s+FROM\s+(?P<obj>\w+)"
    r"(?:\s+WHERE\s+(?P<where>.+?))?"
    r"(?:\s+ORDER\s+BY\s+(?P<order>.+?))?"
    r"(?:\s+LIMIT\s+(?P<limit>\d+))?\s*$",
    re.IGNORECASE | re.DOTALL,
)
_COND_RE = re.compile(r"^\s*(?P<field>[\w.]+)\s*(?P<op>>=|<=|!=|=|>|<)\s*(?P<value>.+?)\s*$")
# `Id IN ('a', 'b')`: how the write-back reads a chunk's current values.
_IN_RE = re.compile(
    r"^\s*(?P<field>[\w.]+)\s+IN\s*\((?P<values>.*)\)\s*$", re.IGNORECASE | re.DOTALL
)
_DATETIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})$")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _literal(text: str) -> Any:
    if text.startswith("'") and text.endswith("'") and len(text) >= 2:
        return text[1:-1].replace("\\'", "'")
    lowered = text.lower()
    if lowered == "null":
        return None
    if lowered in ("true", "false"):
        return lowered == "true"
    if _DATETIME_RE.match(text):
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    if _DATE_RE.match(text):
        return text
    try:
        return float(text) if "." in text else int(text)
    except ValueError:
        raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{text}'") from None


def parse_soql(text: str) -> Soql:
    match = _SOQL_RE.match(text)
    if not match:
        raise SoqlError("MALFORMED_QUERY", "unexpected token: expected SELECT ... FROM ...")
    obj = match["obj"]
    if obj not in SCHEMA:
        raise SoqlError("INVALID_TYPE", f"sObject type '{obj}' is not supported.")
    raw_fields = [f.strip() for f in match["fields"].split(",")]
    count = [f.upper() for f in raw_fields] == ["COUNT()"]
    if not count:
        for name in raw_fields:
            _check_field(obj, name)
    where = []
    if match["where"]:
        for part in re.split(r"\s+AND\s+", match["where"], flags=re.IGNORECASE):
            within = _IN_RE.match(part)
            if within:
                _check_field(obj, within["field"])
                values = [_literal(v.strip()) for v in within["values"].split(",") if v.strip()]
                where.append(Condition(within["field"], "IN", frozenset(values)))
                continue
            cond = _COND_RE.match(part)
            if not cond:
                raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{part.strip()}'")
            _check_field(obj, cond["field"])
            where.append(Condition(cond["field"], cond["op"], _literal(cond["value"])))
    order = []
    if match["order"]:
        for part in match["order"].split(","):
            bits = part.split()
            if (
                not bits
                or len(bits) > 2
                or (len(bits) == 2 and bits[1].upper() not in ("ASC", "DESC"))
            ):
                raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{part.strip()}'")
            _check_field(obj, bits[0])
            order.append((bits[0], len(bits) == 2 and bits[1].upper() == "DESC"))
    return Soql(
        obj=obj,
        fields=[] if count else raw_fields,
        count=count,
        where=where,
        order=order,
        limit=int(match["limit"]) if match["limit"] else None,
    )


def _check_field(obj: str, name: str) -> None:
    if "." in name:
        rel, _, sub = name.partition(".")
        if rel not in RELATIONSHIPS[obj]:
            raise SoqlError("INVALID_FIELD", f"Didn't understand relationship '{rel}' on {obj}.")
        _check_field(RELATIONSHIPS[obj][rel][1], sub)
    elif name not in SCHEMA[obj]:
        raise SoqlError("INVALID_FIELD", f"No such column '{name}' on entity '{obj}'.")


def _comparable(value: Any) -> Any:
    if isinstance(value, str) and _DATETIME_RE.match(value):
        return datetime.fromisoformat(value)
    return value


class FakeSalesforce:
    """The server. Seed data with `add`, change it with `update`; inspect `requests`,
    `patches`, `logins`; inject failures with the switches listed in the module docstring."""

    version = "59.0"

    def __init__(self, ca: trustme.CA, *, page_size: int = 2000, api_limit: int = 1_000_000):
        self.ca = ca
        self.ca_path: Path | None = None
        self.page_size = page_size
        self.api_limit = api_limit
        self.api_used = 0
        self.lock = threading.RLock()
        self.objects: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in SCHEMA}
        self.clock = EPOCH
        self._serial = 0
        self.session_id = f"{ORG_ID}!{secrets.token_urlsafe(24)}"
        self.sessions = {self.session_id}
        self.username = "integration@portfolio.example"
        self.password = "fake-password"
        self.security_token = "fake-token"
        self.logins = 0
        self.requests: list[tuple[str, str]] = []
        self.patches: list[tuple[str, str, dict]] = []
        # One entry per write request that reached an endpoint: (api, number of records),
        # api in {"sobject", "collection", "bulk2"} (bulk2: counted at the CSV upload).
        self.write_requests: list[tuple[str, int]] = []
        self.deleted: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in SCHEMA}
        self.refusals: dict[str, tuple[str, str]] = {}
        self.locked: set[str] = set()
        self.jobs: dict[str, dict[str, Any]] = {}
        self.bulk_delay = 0.0
        self.drops: deque[int] = deque()  # per pending drop: query responses to let through
        self.dropped: list[str] = []  # paths of the responses cut short
        self.failures: deque[tuple[int, str, float | None]] = deque()
        self.timeouts: deque[float] = deque()
        self.delay = 0.0
        self.expire_countdown: int | None = None
        self._gate = threading.Event()
        self._gate.set()
        self._cursors: dict[str, list[dict]] = {}
        cert = ca.issue_cert("127.0.0.1", "localhost")
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(context)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._server.daemon_threads = True
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    # --- lifecycle --------------------------------------------------------------------
    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"https://{host}:{port}"

    @property
    def instance(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{host}:{port}"

    def start(self) -> FakeSalesforce:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._gate.set()
        self._server.shutdown()
        self._server.server_close()

    # --- data -------------------------------------------------------------------------
    def tick(self) -> str:
        """The next SystemModstamp (one second after the previous one)."""
        with self.lock:
            self.clock += timedelta(seconds=1)
            return format_datetime(self.clock)

    def new_id(self, obj: str) -> str:
        with self.lock:
            self._serial += 1
            return f"{ID_PREFIX[obj]}{self._serial:012d}AAA"

    def add(self, obj: str, /, **fields: Any) -> dict[str, Any]:
        """Store a record (an Id and SystemModstamp are made unless given; `Id=None` makes a
        record whose Id is missing from query results, to test malformed data)."""
        with self.lock:
            key = fields.get("Id") or self.new_id(obj)
            record = {"Id": key, **fields}
            record.setdefault("SystemModstamp", self.tick())
            self.objects[obj][f"{key}" if record["Id"] else f"_noid{self._serial}"] = record
            return record

    def add_many(self, obj: str, records: list[dict[str, Any]]) -> None:
        """Bulk seeding for benchmarks: every record gets an Id and its own modstamp."""
        with self.lock:
            table = self.objects[obj]
            for fields in records:
                key = fields.get("Id") or self.new_id(obj)
                self.clock += timedelta(seconds=1)
                record = {"Id": key, **fields, "SystemModstamp": format_datetime(self.clock)}
                table[key] = record

    def update(self, obj: str, record_id: str, /, **fields: Any) -> dict[str, Any]:
        """Change a record as a Salesforce user would: its SystemModstamp moves on."""
        with self.lock:
            record = self.objects[obj][record_id]
            record.update(fields)
            record["SystemModstamp"] = self.tick()
            return record

    def get(self, obj: str, record_id: str) -> dict[str, Any]:
        return self.objects[obj][record_id]

    def delete(self, obj: str, record_id: str) -> None:
        """Delete a record as a Salesforce user would: writes to it get ENTITY_IS_DELETED."""
        with self.lock:
            self.deleted[obj][record_id] = self.objects[obj].pop(record_id)

    # --- switches ---------------------------------------------------------------------
    def fail_next(
        self,
        status: int,
        count: int = 1,
        *,
        error_code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        """Answer the next `count` REST requests with `status` (e.g. 429, 503, or 403 with
        error_code REQUEST_LIMIT_EXCEEDED), optionally with a Retry-After header."""
        code = error_code or {
            429: "REQUEST_LIMIT_EXCEEDED",
            403: "REQUEST_LIMIT_EXCEEDED",
            400: "MALFORMED_QUERY",
            401: "INVALID_SESSION_ID",
            404: "NOT_FOUND",
        }.get(status, "SERVER_UNAVAILABLE")
        with self.lock:
            self.failures.extend([(status, code, retry_after)] * count)

    def timeout_next(self, count: int = 1, seconds: float = 2.0) -> None:
        """Answer the next `count` REST requests only after `seconds` (client timeouts)."""
        with self.lock:
            self.timeouts.extend([seconds] * count)

    def expire_sessions(self) -> None:
        """Invalidate every session id: the next REST call gets 401 INVALID_SESSION_ID."""
        with self.lock:
            self.sessions.clear()

    def expire_sessions_after(self, count: int) -> None:
        """Let `count` more REST requests through, then invalidate every session (mid-run)."""
        with self.lock:
            self.expire_countdown = count

    def refuse_records(self, refusals: dict[str, tuple[str, str]]) -> None:
        """Refuse every write to these records with `(statusCode, message)`, e.g.
        `{id: ("FIELD_CUSTOM_VALIDATION_EXCEPTION", "Health needs a reason")}`, on every
        write API (a validation rule)."""
        with self.lock:
            self.refusals.update(refusals)

    def lock_rows_next(self, ids: list[str]) -> None:
        """The next write to each of these records fails once with UNABLE_TO_LOCK_ROW."""
        with self.lock:
            self.locked.update(ids)

    def drop_next(self, count: int = 1, *, after: int = 0) -> None:
        """The next `count` query responses (first pages or query_more), after letting
        `after` more through, send their headers with a Content-Length and only half the
        body, then close the connection (a connection dropped mid-response)."""
        with self.lock:
            self.drops.extend([after] + [0] * (count - 1))

    def write_calls(self, api: str | None = None) -> int:
        """How many write requests (of one api: sobject, collection, bulk2) were answered."""
        return sum(1 for kind, _ in self.write_requests if api is None or kind == api)

    def pause(self) -> None:
        self._gate.clear()

    def resume(self) -> None:
        self._gate.set()

    def query_count(self, obj: str | None = None) -> int:
        """How many query requests (first pages, not query_more) were answered."""
        return sum(
            1
            for method, path in self.requests
            if method == "GET"
            and re.search(r"/query(All)?/?\?q=", path)
            and (obj is None or re.search(rf"FROM(\+|%20| ){obj}\b", path))
        )

    # --- settings / environment for clients -------------------------------------------
    def settings_for_session(self) -> dict[str, Any]:
        return {
            "SALESFORCE_INSTANCE_URL": self.url,
            "SALESFORCE_SESSION_ID": self.session_id,
            "SALESFORCE_USERNAME": "",
            "SALESFORCE_PASSWORD": "",
            "SALESFORCE_SECURITY_TOKEN": "",
            "SALESFORCE_DOMAIN": "login",
            "SALESFORCE_ENABLED": True,
        }

    def settings_for_password(self) -> dict[str, Any]:
        return {
            "SALESFORCE_INSTANCE_URL": "",
            "SALESFORCE_SESSION_ID": "",
            "SALESFORCE_USERNAME": self.username,
            "SALESFORCE_PASSWORD": self.password,
            "SALESFORCE_SECURITY_TOKEN": self.security_token,
            "SALESFORCE_DOMAIN": self.url,
            "SALESFORCE_ENABLED": True,
        }

    def use_password_auth(self, django_settings: Any) -> None:
        """Point settings at the fake with username/password auth (SOAP login)."""
        for name, value in self.settings_for_password().items():
            setattr(django_settings, name, value)

    def write_ca(self, path: Path) -> Path:
        self.ca.cert_pem.write_to_path(str(path))
        self.ca_path = path
        return path

    def worker_env(self, *, password: bool = False) -> dict[str, str]:
        """Environment for a subprocess (Celery worker, manage.py) to use this fake."""
        values = self.settings_for_password() if password else self.settings_for_session()
        env = {k: str(v) for k, v in values.items() if k != "SALESFORCE_ENABLED"}
        env.update(
            REQUESTS_CA_BUNDLE=str(self.ca_path),
            SALESFORCE_BACKOFF_SECONDS="0.01",
            SALESFORCE_BACKOFF_MAX_SECONDS="0.05",
        )
        return env

    # --- query engine -----------------------------------------------------------------
    def run_query(self, soql: str) -> dict[str, Any]:
        parsed = parse_soql(soql)
        with self.lock:
            by_id = [c for c in parsed.where if c.field == "Id" and c.op == "IN"]
            scan = (
                [
                    self.objects[parsed.obj][i]
                    for i in by_id[0].value
                    if i in self.objects[parsed.obj]
                ]
                if by_id
                else self.objects[parsed.obj].values()
            )
            rows = [r for r in scan if self._matches(r, parsed)]
        for name, descending in reversed(parsed.order):
            rows.sort(
                key=lambda r, n=name: _sort_key(self._value(parsed.obj, r, n)), reverse=descending
            )
        if parsed.limit is not None:
            rows = rows[: parsed.limit]
        if parsed.count:
            return {"totalSize": len(rows), "done": True, "records": []}
        projected = [self._project(parsed.obj, r, parsed.fields) for r in rows]
        return self._page(projected, locator=None, offset=0)

    def more(self, locator: str, offset: int) -> dict[str, Any]:
        with self.lock:
            rows = self._cursors.get(locator)
        if rows is None:
            raise SoqlError("INVALID_QUERY_LOCATOR", "invalid query locator")
        return self._page(rows, locator=locator, offset=offset)

    def _page(self, rows: list[dict], *, locator: str | None, offset: int) -> dict[str, Any]:
        end = offset + self.page_size
        body: dict[str, Any] = {"totalSize": len(rows), "done": end >= len(rows)}
        if end < len(rows):
            if locator is None:
                locator = f"01g{secrets.token_hex(6)}"
                with self.lock:
                    self._cursors[locator] = rows
            body["nextRecordsUrl"] = f"/services/data/v{self.version}/query/{locator}-{end}"
        body["records"] = rows[offset:end]
        return body

    def _matches(self, record: dict, parsed: Soql) -> bool:
        for cond in parsed.where:
            left = _comparable(self._value(parsed.obj, record, cond.field))
            right = cond.value
            if cond.op == "=":
                ok = left == right
            elif cond.op == "IN":
                ok = left in right
            elif cond.op == "!=":
                ok = left != right
            elif left is None or right is None:
                ok = False
            else:
                try:
                    ok = {
                        ">": left > right,
                        ">=": left >= right,
                        "<": left < right,
                        "<=": left <= right,
                    }[cond.op]
                except TypeError:
                    ok = False
            if not ok:
                return False
        return True

    def _value(self, obj: str, record: dict, name: str) -> Any:
        if "." in name:
            rel, _, sub = name.partition(".")
            lookup, target = RELATIONSHIPS[obj][rel]
            other = self.objects[target].get(record.get(lookup) or "")
            return None if other is None else self._value(target, other, sub)
        return record.get(name)

    def _attributes(self, obj: str, record_id: Any) -> dict[str, str]:
        return {"type": obj, "url": f"/services/data/v{self.version}/sobjects/{obj}/{record_id}"}

    def _project(self, obj: str, record: dict, fields: list[str]) -> dict[str, Any]:
        out: dict[str, Any] = {"attributes": self._attributes(obj, record.get("Id"))}
        for name in fields:
            if "." not in name:
                out[name] = record.get(name)
                continue
            rel, _, sub = name.partition(".")
            lookup, target = RELATIONSHIPS[obj][rel]
            other = self.objects[target].get(record.get(lookup) or "")
            if other is None:
                out[rel] = None
            else:
                nested = out.get(rel) or {"attributes": self._attributes(target, other["Id"])}
                nested[sub] = other.get(sub)
                out[rel] = nested
        return out

    def check_fields(self, obj: str, body: dict[str, Any]) -> None:
        for name in body:
            if name not in SCHEMA[obj] or name in ("Id", "SystemModstamp"):
                raise SoqlError(
                    "INVALID_FIELD", f"No such column '{name}' on sobject of type {obj}"
                )

    def patch(self, obj: str, record_id: str, body: dict[str, Any]) -> None:
        """The single-record PATCH: KeyError for a missing record, SoqlError for a bad
        field or a refused record."""
        self.check_fields(obj, body)
        with self.lock:
            if record_id not in self.objects[obj]:
                raise KeyError(record_id)
            error = self.record_error(obj, record_id)
            if error is not None:
                raise SoqlError(error[0], error[1])
            self._apply(obj, record_id, body)

    def record_error(
        self, obj: str, record_id: Any, *, consume: bool = True
    ) -> tuple[str, str, list[str]] | None:
        """Why Salesforce would refuse an update of this record, as (statusCode, message,
        fields), or None. `consume` uses up a one-off row lock."""
        if not isinstance(record_id, str) or not record_id:
            return ("MISSING_ARGUMENT", "Id not specified in an update call", [])
        if not re.fullmatch(r"[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?", record_id) or (
            not record_id.startswith(ID_PREFIX[obj])
        ):
            return ("MALFORMED_ID", f"{obj} ID: id value of incorrect type: {record_id}", ["Id"])
        if record_id in self.deleted[obj]:
            return ("ENTITY_IS_DELETED", "entity is deleted", [])
        if record_id not in self.objects[obj]:
            return ("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [])
        if record_id in self.refusals:
            code, message = self.refusals[record_id]
            return (code, message, [])
        if record_id in self.locked:
            if consume:
                self.locked.discard(record_id)
            return (
                "UNABLE_TO_LOCK_ROW",
                f"unable to obtain exclusive access to this record or 1 records: {record_id}",
                [],
            )
        return None

    def _apply(self, obj: str, record_id: str, body: dict[str, Any]) -> None:
        with self.lock:
            record = self.objects[obj][record_id]
            record.update(body)
            record["SystemModstamp"] = self.tick()
            self.patches.append((obj, record_id, body))

    def update_collection(self, payload: Any) -> list[dict[str, Any]]:
        """`PATCH composite/sobjects`: SaveResults in request order; SoqlError (400) for a
        request Salesforce refuses as a whole."""
        if not isinstance(payload, dict) or not isinstance(payload.get("records"), list):
            raise SoqlError("JSON_PARSER_ERROR", "records: expected a list of sObjects")
        records = payload["records"]
        if len(records) > 200:
            raise SoqlError(
                "EXCEEDED_ID_LIMIT",
                "record limit reached. cannot submit more than 200 records into this call",
            )
        all_or_none = bool(payload.get("allOrNone", False))
        plan = []
        for record in records:
            obj = ((record or {}).get("attributes") or {}).get("type")
            if obj not in SCHEMA:
                raise SoqlError("INVALID_TYPE", "Must send a concrete entity type.")
            fields = {k: v for k, v in record.items() if k not in ("attributes", "id", "Id")}
            self.check_fields(obj, fields)
            plan.append((obj, record.get("id") or record.get("Id"), fields))
        with self.lock:
            errors = [self.record_error(obj, rid, consume=not all_or_none) for obj, rid, _ in plan]
            if all_or_none and any(errors):
                rolled = (
                    "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                    "Record rolled back because "
                    "not all records were valid and the request was using AllOrNone "
                    "header",
                    [],
                )
                errors = [self.record_error(obj, rid) or rolled for obj, rid, _ in plan]
            results = []
            for (obj, rid, fields), error in zip(plan, errors, strict=True):
                if error is None:
                    self._apply(obj, rid, fields)
                    results.append({"id": rid, "success": True, "errors": []})
                    continue
                code, message, names = error
                result: dict[str, Any] = {
                    "success": False,
                    "errors": [{"statusCode": code, "message": message, "fields": names}],
                }
                if rid in self.objects[obj]:
                    result = {"id": rid, **result}  # no id for a record that is not there
                results.append(result)
        return results

    # --- Bulk API 2.0 ingest ---------------------------------------------------------
    def _job_info(self, job: dict[str, Any]) -> dict[str, Any]:
        return dict(job["info"])

    def bulk_create(self, payload: Any) -> dict[str, Any]:
        if not isinstance(payload, dict) or payload.get("object") not in SCHEMA:
            raise SoqlError(
                "INVALIDENTITY",
                f"Entity '{(payload or {}).get('object')}' is not supported by the Bulk API.",
            )
        if payload.get("operation") != "update":
            raise SoqlError("INVALIDJOB", "The fake supports only the update operation.")
        if payload.get("contentType", "CSV") != "CSV":
            raise SoqlError("INVALIDJOB", "contentType must be CSV")
        with self.lock:
            self._serial += 1
            job_id = f"750{self._serial:012d}AAA"
            now = format_datetime(self.clock)
            info = {
                "id": job_id,
                "operation": "update",
                "object": payload["object"],
                "createdById": "005000000000001AAA",
                "createdDate": now,
                "systemModstamp": now,
                "state": "Open",
                "concurrencyMode": "Parallel",
                "contentType": "CSV",
                "apiVersion": float(self.version),
                "contentUrl": f"services/data/v{self.version}/jobs/ingest/{job_id}/batches",
                "lineEnding": payload.get("lineEnding", "LF"),
                "columnDelimiter": payload.get("columnDelimiter", "COMMA"),
            }
            self.jobs[job_id] = {"info": info, "csv": None}
            return self._job_info(self.jobs[job_id])

    def bulk_upload(self, job_id: str, text: str) -> int:
        with self.lock:
            job = self.jobs[job_id]
            if job["info"]["state"] != "Open" or job["csv"] is not None:
                raise SoqlError(
                    "INVALIDJOBSTATE", "Data can be uploaded only once, to an Open job."
                )
            job["csv"] = text
            return max(len(list(csv.reader(io.StringIO(text)))) - 1, 0)

    def bulk_set_state(self, job_id: str, state: str) -> dict[str, Any]:
        with self.lock:
            job = self.jobs[job_id]
            current = job["info"]["state"]
            if state == "UploadComplete" and current == "Open":
                if job["csv"] is None:
                    raise SoqlError("INVALIDJOBSTATE", "No data was uploaded to this job.")
                # Processed in the background, as Salesforce does: the client polls.
                worker = threading.Timer(self.bulk_delay, self._bulk_run, [job_id])
                worker.daemon = True
                worker.start()
            elif not (state == "Aborted" and current in ("Open", "UploadComplete", "InProgress")):
                raise SoqlError("INVALIDJOBSTATE", f"Cannot move a {current} job to {state}.")
            job["info"]["state"] = state
            return self._job_info(job)

    def _bulk_run(self, job_id: str) -> None:
        with self.lock:
            job = self.jobs.get(job_id)
            if job is not None and job["info"]["state"] in ("UploadComplete", "InProgress"):
                self._bulk_process(job)

    def bulk_info(self, job_id: str) -> dict[str, Any]:
        with self.lock:
            job = self.jobs[job_id]
            if job["info"]["state"] == "UploadComplete":
                job["info"]["state"] = "InProgress"
            return self._job_info(job)

    def _bulk_process(self, job: dict[str, Any]) -> None:
        info = job["info"]
        obj = info["object"]
        rows = list(csv.DictReader(io.StringIO(job["csv"])))
        columns = next(csv.reader(io.StringIO(job["csv"]))) if rows else ["Id"]
        job.update(columns=columns, successes=[], failures=[], unprocessed=[])
        bad = [c for c in columns if c != "Id" and (c not in SCHEMA[obj] or c == "SystemModstamp")]
        if bad or "Id" not in columns:
            info["state"] = "Failed"
            info["errorMessage"] = (
                f"InvalidBatch : Field name not found : {bad[0]}"
                if bad
                else "InvalidBatch : Field name not provided: Id"
            )
            job["unprocessed"] = rows
            info.update(numberRecordsProcessed=0, numberRecordsFailed=0)
            return
        for row in rows:
            record_id = row["Id"]
            error = self.record_error(obj, record_id)
            if error is not None:
                job["failures"].append((record_id, row, error))
                continue
            current = self.objects[obj][record_id]
            fields = {
                name: _from_csv(value, current.get(name))
                for name, value in row.items()
                if name != "Id" and value != ""
            }
            self._apply(obj, record_id, fields)
            job["successes"].append((record_id, row))
        info["state"] = "JobComplete"
        info.update(numberRecordsProcessed=len(rows), numberRecordsFailed=len(job["failures"]))

    def bulk_results(self, job_id: str, kind: str) -> str:
        with self.lock:
            job = self.jobs[job_id]
            if job["info"]["state"] not in ("JobComplete", "Failed", "Aborted"):
                raise SoqlError("INVALIDJOBSTATE", "The job is not finished.")
            columns = job.get("columns") or ["Id"]
            out = io.StringIO()
            writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n")
            if kind == "successfulResults":
                writer.writerow(["sf__Id", "sf__Created", *columns])
                # Bulk API does not keep the upload's order; neither does the fake.
                for record_id, row in reversed(job.get("successes", [])):
                    writer.writerow([record_id, "false", *(row[c] for c in columns)])
            elif kind == "failedResults":
                writer.writerow(["sf__Id", "sf__Error", *columns])
                for record_id, row, (code, message, names) in reversed(job.get("failures", [])):
                    known = record_id in self.objects[job["info"]["object"]]
                    error = f"{code}:{message}:{','.join(names) or '--'}"
                    writer.writerow([record_id if known else "", error, *(row[c] for c in columns)])
            else:
                writer.writerow(columns)
                for row in job.get("unprocessed", []):
                    writer.writerow([row[c] for c in columns])
            return out.getvalue()

    def login(self, body: str) -> str | None:
        username = re.search(r"<(?:\w+:)?username>(.*?)</(?:\w+:)?username>", body, re.DOTALL)
        password = re.search(r"<(?:\w+:)?password>(.*?)</(?:\w+:)?password>", body, re.DOTALL)
        expected = self.password + self.security_token
        if not username or not password:
            return None
        if username.group(1) != self.username or password.group(1) != expected:
            return None
        with self.lock:
            session_id = f"{ORG_ID}!{secrets.token_urlsafe(24)}"
            self.sessions.add(session_id)
            self.logins += 1
        return session_id


def _from_csv(value: str, current: Any) -> Any:
    """A Bulk API CSV cell as the fake stores it: #N/A is null; numbers and booleans keep
    the type the record had."""
    if value == "#N/A":
        return None
    try:
        if isinstance(current, bool):
            return value.lower() == "true"
        if isinstance(current, int):
            return int(value)
        if isinstance(current, float):
            return float(value)
    except ValueError:
        pass
    return value


def _sort_key(value: Any) -> tuple:
    value = _comparable(value)
    return (value is None, value if value is not None else 0)


def _make_handler(fake: FakeSalesforce) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body are separate writes: without this, Nagle + delayed ACK add 40 ms.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

        # --- plumbing ---------------------------------------------------------------
        def _send(self, status: int, body: bytes, content_type: str, headers=None) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
                self.close_connection = True

        def _json(self, status: int, payload: Any, headers=None) -> None:
            limit = {"Sforce-Limit-Info": f"api-usage={fake.api_used}/{fake.api_limit}"}
            body = b"" if payload is None else json.dumps(payload).encode()
            self._send(status, body, "application/json;charset=UTF-8", {**limit, **(headers or {})})

        def _error(self, status: int, code: str, message: str, headers=None) -> None:
            self._json(status, [{"message": message, "errorCode": code}], headers)

        def _body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _rest_preamble(self) -> bool:
            """Gate, failures, auth and limits shared by every REST call; False = answered."""
            fake._gate.wait()
            if fake.delay:
                time.sleep(fake.delay)
            with fake.lock:
                fake.requests.append((self.command, self.path))
                failure = fake.failures.popleft() if fake.failures else None
                late = fake.timeouts.popleft() if fake.timeouts else None
                if fake.expire_countdown is not None:
                    if fake.expire_countdown <= 0:
                        fake.sessions.clear()
                        fake.expire_countdown = None
                    else:
                        fake.expire_countdown -= 1
            if late is not None:
                time.sleep(late)
            if failure is not None:
                status, code, retry_after = failure
                headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
                self._error(status, code, f"Injected failure {status}", headers)
                return False
            token = (self.headers.get("Authorization") or "").removeprefix("Bearer ").strip()
            if token not in fake.sessions:
                self._error(401, "INVALID_SESSION_ID", "Session expired or invalid")
                return False
            with fake.lock:
                fake.api_used += 1
                over = fake.api_used > fake.api_limit
            if over:
                self._error(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
                return False
            return True

        # --- verbs --------------------------------------------------------------------
        def do_GET(self) -> None:  # noqa: N802
            parts = urlsplit(self.path)
            m = re.fullmatch(
                rf"/services/data/{API_VERSION_RE}/(?P<kind>query|queryAll)/?", parts.path
            )
            more = re.fullmatch(
                rf"/services/data/{API_VERSION_RE}/(?:query|queryAll)/(?P<loc>01g\w+)-(?P<off>\d+)",
                parts.path,
            )
            job = re.fullmatch(
                rf"/services/data/{API_VERSION_RE}/jobs/ingest/(?P<id>\w+)"
                r"(?:/(?P<kind>successfulResults|failedResults|unprocessedrecords))?/?",
                parts.path,
            )
            if job and job["kind"]:
                self._bulk(lambda: fake.bulk_results(job["id"], job["kind"]), "csv")
                return
            if job:
                self._bulk(lambda: fake.bulk_info(job["id"]))
                return
            if not (m or more):
                self._drain_and_404()
                return
            if not self._rest_preamble():
                return
            try:
                if m:
                    soql = parse_qs(parts.query).get("q", [""])[0]
                    payload = fake.run_query(soql)
                else:
                    payload = fake.more(more["loc"], int(more["off"]))
            except SoqlError as exc:
                self._error(400, exc.code, exc.message)
                return
            with fake.lock:
                drop = bool(fake.drops) and fake.drops[0] == 0
                if drop:
                    fake.drops.popleft()
                    fake.dropped.append(self.path)
                elif fake.drops:
                    fake.drops[0] -= 1
            if drop:
                self._drop(json.dumps(payload).encode())
                return
            self._json(200, payload)

        def _drop(self, body: bytes) -> None:
            """Headers promising the whole body, half of it, then the connection closes."""
            self.send_response(200)
            self.send_header("Content-Type", "application/json;charset=UTF-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True

        def do_PATCH(self) -> None:  # noqa: N802
            body = self._body()
            path = urlsplit(self.path).path
            if re.fullmatch(rf"/services/data/{API_VERSION_RE}/composite/sobjects/?", path):
                self._collection(body)
                return
            job = re.fullmatch(rf"/services/data/{API_VERSION_RE}/jobs/ingest/(?P<id>\w+)/?", path)
            if job:
                self._bulk(lambda: fake.bulk_set_state(job["id"], json.loads(body)["state"]))
                return
            m = re.fullmatch(
                rf"/services/data/{API_VERSION_RE}/sobjects/(?P<obj>\w+)/(?P<id>\w+)", path
            )
            if not m or m["obj"] not in SCHEMA:
                self._error(404, "NOT_FOUND", "The requested resource does not exist")
                return
            if not self._rest_preamble():
                return
            with fake.lock:
                fake.write_requests.append(("sobject", 1))
            try:
                data = json.loads(body or b"{}")
                fake.patch(m["obj"], m["id"], data)
            except json.JSONDecodeError:
                self._error(400, "JSON_PARSER_ERROR", "Cannot parse the request body")
                return
            except SoqlError as exc:
                self._error(400, exc.code, exc.message)
                return
            except KeyError:
                self._error(404, "NOT_FOUND", "The requested resource does not exist")
                return
            self._send(204, b"", "application/json", {})

        def _collection(self, body: bytes) -> None:
            if not self._rest_preamble():
                return
            try:
                payload = json.loads(body or b"{}")
            except json.JSONDecodeError:
                self._error(400, "JSON_PARSER_ERROR", "Cannot parse the request body")
                return
            records = payload.get("records") if isinstance(payload, dict) else None
            with fake.lock:
                fake.write_requests.append(
                    ("collection", len(records) if isinstance(records, list) else 0)
                )
            try:
                results = fake.update_collection(payload)
            except SoqlError as exc:
                self._error(400, exc.code, exc.message)
                return
            self._json(200, results)

        def do_PUT(self) -> None:  # noqa: N802
            body = self._body().decode("utf-8", "replace")
            job = re.fullmatch(
                rf"/services/data/{API_VERSION_RE}/jobs/ingest/(?P<id>\w+)/batches/?",
                urlsplit(self.path).path,
            )
            if not job:
                self._error(404, "NOT_FOUND", "The requested resource does not exist")
                return
            if not self._rest_preamble():
                return
            try:
                rows = fake.bulk_upload(job["id"], body)
            except KeyError:
                self._error(404, "NOT_FOUND", "The requested resource does not exist")
                return
            except SoqlError as exc:
                self._error(400, exc.code, exc.message)
                return
            with fake.lock:
                fake.write_requests.append(("bulk2", rows))
            self._send(201, b"", "text/plain", {})

        def _bulk(self, answer: Any, content_type: str = "json") -> None:
            """Preamble, then `answer()` as JSON (or CSV); KeyError is an unknown job."""
            if not self._rest_preamble():
                return
            try:
                payload = answer()
            except KeyError:
                self._error(404, "NOT_FOUND", "The requested resource does not exist")
                return
            except (SoqlError, json.JSONDecodeError, TypeError) as exc:
                code = getattr(exc, "code", "JSON_PARSER_ERROR")
                self._error(400, code, getattr(exc, "message", str(exc)))
                return
            if content_type == "csv":
                self._send(200, payload.encode(), "text/csv", {})
            else:
                self._json(200, payload)

        def do_POST(self) -> None:  # noqa: N802
            path = urlsplit(self.path).path
            if re.fullmatch(rf"/services/data/{API_VERSION_RE}/jobs/ingest/?", path):
                raw = self._body()
                self._bulk(lambda: fake.bulk_create(json.loads(raw or b"{}")))
                return
            body = self._body().decode("utf-8", "replace")
            if not re.fullmatch(r"/services/Soap/u/\d+\.\d", urlsplit(self.path).path):
                self._error(404, "NOT_FOUND", "The requested resource does not exist")
                return
            fake._gate.wait()
            with fake.lock:
                fake.requests.append(("POST", self.path))
            session_id = fake.login(body)
            if session_id is None:
                fault = (
                    '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
                    'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
                    'xmlns:sf="urn:fault.partner.soap.sforce.com"><soapenv:Body><soapenv:Fault>'
                    "<faultcode>sf:INVALID_LOGIN</faultcode><faultstring>INVALID_LOGIN: Invalid "
                    "username, password, security token; or user locked out.</faultstring>"
                    "<detail><sf:LoginFault><sf:exceptionCode>INVALID_LOGIN</sf:exceptionCode>"
                    "<sf:exceptionMessage>Invalid username, password, security token; or user "
                    "locked out.</sf:exceptionMessage></sf:LoginFault></detail></soapenv:Fault>"
                    "</soapenv:Body></soapenv:Envelope>"
                )
                self._send(500, fault.encode(), "text/xml; charset=utf-8")
                return
            server_url = f"{fake.url}/services/Soap/u/{fake.version}/{ORG_ID}"
            ok = (
                '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
                'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
                'xmlns="urn:partner.soap.sforce.com"><soapenv:Body><loginResponse><result>'
                f"<metadataServerUrl>{fake.url}/services/Soap/m/{fake.version}/{ORG_ID}"
                "</metadataServerUrl><passwordExpired>false</passwordExpired>"
                f"<sandbox>false</sandbox><serverUrl>{server_url}</serverUrl>"
                f"<sessionId>{session_id}</sessionId><userId>005000000000001AAA</userId>"
                "</result></loginResponse></soapenv:Body></soapenv:Envelope>"
            )
            self._send(200, ok.encode(), "text/xml; charset=utf-8")

        def _drain_and_404(self) -> None:
            self._error(404, "NOT_FOUND", "The requested resource does not exist")

    return Handler


# --- pytest fixtures ---------------------------------------------------------------------


@pytest.fixture(scope="session")
def salesforce_ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def fake_salesforce(salesforce_ca, settings, monkeypatch, tmp_path) -> Iterator[FakeSalesforce]:
    """A running FakeSalesforce with Portfolio's settings pointed at it.

    - `settings.SALESFORCE_*` use session-id auth against the fake (instance URL + session
      id) and `SALESFORCE_ENABLED` is True; `REQUESTS_CA_BUNDLE` names the fake's CA, so the
      real simple-salesforce client talks real HTTPS to it. Retry backoff is shortened.
    - Seed records with `fake_salesforce.add("Account", Name=..., ARR__c=..., ...)` and
      change them with `.update("Account", id, ...)` (which moves SystemModstamp).
    - Write-backs land in `fake_salesforce.patches` ([(obj, id, body)]) and in the records.
      E.g. after your service changes a TAM and calls
      `portfolio.services.salesforce_writeback_enqueue`, run
      `portfolio.writeback.writeback_push(account_ids=[...])` in the test and
      assert on `fake_salesforce.get("Account", sf_id)["Technical_Account_Manager__c"]`.
    - `fake_salesforce.use_password_auth(settings)` switches to username/password (SOAP login).
    - `fake_salesforce.worker_env()` is the environment for a subprocess (celery_worker,
      manage.py) to reach the fake with the same settings.
    - Failure switches: `fail_next`, `timeout_next`, `expire_sessions`, `pause`/`resume`,
      `drop_next`, `refuse_records`, `lock_rows_next`; batched writes are counted in
      `write_requests` / `write_calls(api)`.
    """
    fake = FakeSalesforce(salesforce_ca).start()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(fake.write_ca(tmp_path / "salesforce-ca.pem")))
    for name, value in fake.settings_for_session().items():
        setattr(settings, name, value)
    settings.SALESFORCE_BACKOFF_SECONDS = 0.01
    settings.SALESFORCE_BACKOFF_MAX_SECONDS = 0.05
    settings.SALESFORCE_TIMEOUT_SECONDS = 5.0
    try:
        yield fake
    finally:
        fake.stop()
