"""The one module that talks to Salesforce (simple-salesforce); nothing else imports it.

Connection, from settings (DESIGN.md "Salesforce"):
- `SALESFORCE_INSTANCE_URL` + `SALESFORCE_SESSION_ID` (a session id or OAuth access token), or
- `SALESFORCE_USERNAME` / `SALESFORCE_PASSWORD` / `SALESFORCE_SECURITY_TOKEN` /
  `SALESFORCE_DOMAIN` (SOAP login). `SALESFORCE_DOMAIN` is `login`, `test`, a My Domain
  such as `acme.my`, or the full `https://...` URL of a login host.

Retry policy (DESIGN.md "Sync rules"): 429, `REQUEST_LIMIT_EXCEEDED` (403), 5xx,
connection errors (including one dropped mid-response) and timeouts are retried up to
`SALESFORCE_MAX_RETRIES` times with full jitter exponential backoff
(`SALESFORCE_BACKOFF_SECONDS` doubling, capped at `SALESFORCE_BACKOFF_MAX_SECONDS`); a
`Retry-After` header is honoured. 400 (e.g. `MALFORMED_QUERY`), 404 and other 403s are
raised at once. 401 `INVALID_SESSION_ID` with password auth logs in again and repeats the
call once; with a fixed session id it is raised with a message saying what to do.

Batched writes (DESIGN.md "Sync rules": sObject Collections, Bulk 2.0 for large sweeps):
`update_collection` PATCHes up to `COLLECTION_LIMIT` records in one call; the
`bulk_update_submit` / `bulk_update_results` pair runs a Bulk API 2.0 update job. Both
answer one `RecordResult` per record; a per-record failure is a result, not an exception.

Secrets: session ids, passwords and tokens are never logged or put in exception messages
(simple-salesforce's own DEBUG logging of URLs is silenced in settings.LOGGING).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TypeVar

import requests
import urllib3.exceptions
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)
from simple_salesforce.login import SalesforceLogin

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Everything a Salesforce call may raise once retries are exhausted; callers catch this.
ERRORS: tuple[type[BaseException], ...] = (
    SalesforceError,
    requests.RequestException,
    urllib3.exceptions.ProtocolError,
)
# Salesforce refused one record (bad value, deleted record): retrying cannot help.
REFUSED: tuple[type[BaseException], ...] = (SalesforceMalformedRequest, SalesforceResourceNotFound)

__all__ = [
    "BULK_MAX_BYTES",
    "COLLECTION_LIMIT",
    "ERRORS",
    "REFUSED",
    "BulkJobFailed",
    "Page",
    "RecordResult",
    "SalesforceAuthenticationFailed",
    "SalesforceClient",
    "SalesforceError",
    "SalesforceExpiredSession",
    "SalesforceMalformedRequest",
    "SalesforceResourceNotFound",
    "client",
    "describe",
]

RETRY_AFTER_MAX_SECONDS = 300.0

# sObject Collections take at most 200 records per request (Salesforce REST API guide,
# "Update Records Using sObject Collections").
COLLECTION_LIMIT = 200
# Per-record status codes that are transient: the same update may succeed when sent again.
RETRYABLE_RECORD_ERRORS = frozenset({"UNABLE_TO_LOCK_ROW"})
# Bulk API 2.0 takes up to 150 MB of (base64-encoded) CSV per job; stay well below it.
BULK_MAX_BYTES = 100_000_000
# Bulk API 2.0's way to set a field to null in CSV (an empty cell leaves the field alone).
BULK_NULL = "#N/A"
BULK_PENDING_STATES = frozenset({"Open", "UploadComplete", "InProgress"})


def _check_settings() -> str:
    """Which auth to use; raises ImproperlyConfigured naming the missing variable."""
    if settings.SALESFORCE_SESSION_ID:
        if not settings.SALESFORCE_INSTANCE_URL:
            raise ImproperlyConfigured(
                "SALESFORCE_SESSION_ID is set but SALESFORCE_INSTANCE_URL is missing: set it "
                "to the org's URL, e.g. https://acme.my.salesforce.com."
            )
        return "session"
    if settings.SALESFORCE_USERNAME:
        if not settings.SALESFORCE_PASSWORD:
            raise ImproperlyConfigured(
                "SALESFORCE_USERNAME is set but SALESFORCE_PASSWORD is missing."
            )
        return "password"
    raise ImproperlyConfigured(
        "Salesforce is not configured: set SALESFORCE_INSTANCE_URL and SALESFORCE_SESSION_ID, "
        "or SALESFORCE_USERNAME, SALESFORCE_PASSWORD and SALESFORCE_SECURITY_TOKEN."
    )


class _TimeoutSession(requests.Session):
    """A requests session that applies a default timeout to every call (simple-salesforce
    passes none for updates), and remembers the last response's headers for Retry-After."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self.default_timeout = timeout
        self.last_headers: dict[str, str] = {}
        self.hooks["response"].append(self._remember)

    def _remember(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self.last_headers = dict(response.headers)

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        kwargs.setdefault("timeout", self.default_timeout)
        self.last_headers = {}
        return super().request(method, url, *args, **kwargs)


@dataclass(frozen=True)
class Page:
    """One page of a query: its records and the query's total size."""

    records: list[dict[str, Any]]
    total_size: int


@dataclass(frozen=True)
class RecordResult:
    """What Salesforce answered for one record of a batched write."""

    salesforce_id: str
    success: bool
    error_code: str = ""  # Salesforce statusCode, e.g. "ENTITY_IS_DELETED"
    message: str = ""
    retryable: bool = False  # a transient per-record error (e.g. UNABLE_TO_LOCK_ROW)


def _json_value(value: Any) -> Any:
    """JSON for values requests cannot encode (Decimal keeps its digits as a number)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _save_result(salesforce_id: str, answer: dict[str, Any]) -> RecordResult:
    """One SaveResult `{"id", "success", "errors": [{"statusCode", "message", "fields"}]}`."""
    if answer.get("success"):
        return RecordResult(salesforce_id=salesforce_id, success=True)
    errors = answer.get("errors") or [{}]
    codes = [str(e.get("statusCode", "")) for e in errors]
    return RecordResult(
        salesforce_id=salesforce_id,
        success=False,
        error_code=codes[0],
        message="; ".join(str(e.get("message", "")) for e in errors),
        retryable=all(code in RETRYABLE_RECORD_ERRORS for code in codes),
    )


def _check_records(records: list[dict[str, Any]]) -> list[str]:
    """The records' ids; raises ValueError for a record without "Id" or a repeated Id."""
    ids = []
    for position, record in enumerate(records):
        record_id = record.get("Id")
        if not record_id:
            raise ValueError(f"record {position} has no Id")
        ids.append(str(record_id))
    if len(set(ids)) != len(ids):
        raise ValueError("the same Id appears twice in one batch")
    return ids


class BulkJobFailed(SalesforceError):
    """A Bulk API 2.0 job ended Failed or Aborted; `state` and `error_message` say why.
    Records it processed before stopping may have been updated (updates are idempotent:
    submitting them all again is safe)."""

    def __init__(self, job_id: str, state: str, error_message: str) -> None:
        super().__init__(f"jobs/ingest/{job_id}", 200, "bulk update", error_message)
        self.job_id = job_id
        self.state = state
        self.error_message = error_message

    def __str__(self) -> str:
        return f"Bulk API job {self.job_id} {self.state}: {self.error_message}"


def _csv_value(value: Any) -> str:
    if value is None:
        return BULK_NULL
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def _bulk_csv(records: list[dict[str, Any]]) -> bytes:
    """The upload CSV: Id first, then every field any record sets. A record without a
    column gets an empty cell, which Bulk API leaves unchanged; None is written #N/A."""
    columns = ["Id"] + sorted({k for record in records for k in record if k != "Id"})
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for record in records:
        writer.writerow(["" if c not in record else _csv_value(record[c]) for c in columns])
    return out.getvalue().encode("utf-8")


def _bulk_error(text: str) -> tuple[str, str]:
    """`sf__Error` is `STATUS_CODE:message:fields` (fields `--` when none)."""
    code, sep, rest = text.partition(":")
    if not sep or not code.replace("_", "").isalnum() or code.upper() != code:
        return "", text
    message, sep, fields = rest.rpartition(":")
    if not sep or (fields != "--" and " " in fields):
        message = rest
    return code, message


def _bulk_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def _error_code(exc: SalesforceError) -> str:
    content = getattr(exc, "content", None)
    if isinstance(content, list) and content and isinstance(content[0], dict):
        return str(content[0].get("errorCode", ""))
    return ""


def describe(exc: BaseException) -> str:
    """A log-safe description: status and error code, never headers or bodies with secrets."""
    if isinstance(exc, SalesforceError):
        status = getattr(exc, "status", "?")
        code = _error_code(exc)
        return f"HTTP {status}" + (f" {code}" if code else "")
    return type(exc).__name__


def is_retryable(exc: BaseException) -> bool:
    """429, REQUEST_LIMIT_EXCEEDED, 5xx, connection errors and timeouts are transient, and
    so is a connection dropped mid-response (requests' ChunkedEncodingError, or urllib3's
    ProtocolError when it escapes unwrapped)."""
    if isinstance(
        exc,
        requests.Timeout
        | requests.ConnectionError
        | requests.exceptions.ChunkedEncodingError
        | urllib3.exceptions.ProtocolError,
    ):
        return True
    if isinstance(exc, SalesforceRefusedRequest):
        return _error_code(exc) == "REQUEST_LIMIT_EXCEEDED"
    if isinstance(exc, SalesforceGeneralError):
        status = getattr(exc, "status", 0) or 0
        return status == 429 or status >= 500
    return False


def _retry_after(headers: dict[str, str]) -> float | None:
    value = headers.get("Retry-After") or headers.get("retry-after")
    if not value:
        return None
    try:
        return min(max(float(value), 0.0), RETRY_AFTER_MAX_SECONDS)
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff


@dataclass
class RetryPolicy:
    """How transient failures are retried (module docstring)."""

    max_retries: int
    backoff: float
    backoff_max: float
    sleep: Callable[[float], None] = time.sleep
    retries: int = 0

    @classmethod
    def from_settings(cls) -> RetryPolicy:
        return cls(
            max_retries=settings.SALESFORCE_MAX_RETRIES,
            backoff=getattr(settings, "SALESFORCE_BACKOFF_SECONDS", 1.0),
            backoff_max=getattr(settings, "SALESFORCE_BACKOFF_MAX_SECONDS", 60.0),
        )

    def run(self, name: str, fn: Callable[[], T], session: _TimeoutSession) -> T:
        attempt = 0
        while True:
            try:
                return fn()
            except Exception as exc:
                if not is_retryable(exc) or attempt >= self.max_retries:
                    raise
                delay = _retry_after(session.last_headers)
                if delay is None:
                    delay = random.uniform(0, min(self.backoff_max, self.backoff * 2**attempt))  # nosec B311 # jitter and demo data, not security
                attempt += 1
                self.retries += 1
                logger.warning(
                    "Salesforce %s failed (%s); retry %d/%d in %.2fs",
                    name,
                    describe(exc),
                    attempt,
                    self.max_retries,
                    delay,
                )
                self.sleep(delay)


class SalesforceClient:
    """A simple-salesforce client wrapped in Portfolio's retry and re-login policy."""

    def __init__(
        self,
        *,
        sf: Salesforce,
        session: _TimeoutSession,
        login: Callable[[], tuple[str, str]] | None,
        build: Callable[[str, str], Salesforce] | None,
        policy: RetryPolicy,
    ) -> None:
        self.sf = sf
        self._session = session
        self._login = login
        self._build = build
        self.policy = policy
        self.relogins = 0

    @property
    def retries(self) -> int:
        return self.policy.retries

    def _call(self, name: str, fn: Callable[[], T]) -> T:
        try:
            return self.policy.run(name, fn, self._session)
        except SalesforceExpiredSession:
            if self._login is None:
                raise SalesforceExpiredSession(
                    "",
                    401,
                    name,
                    "Salesforce rejected SALESFORCE_SESSION_ID (INVALID_SESSION_ID): set a "
                    "fresh session id, or set SALESFORCE_USERNAME/SALESFORCE_PASSWORD so "
                    "Portfolio can log in again by itself.",
                ) from None
        # Password auth: log in again and repeat the call once (a second 401 is raised).
        logger.info("Salesforce session expired during %s; logging in again", name)
        self._relogin()
        return self.policy.run(name, fn, self._session)

    def _relogin(self) -> None:
        assert self._login is not None and self._build is not None  # nosec B101 # an internal invariant, not input validation
        session_id, instance = self.policy.run("login", self._login, self._session)
        self.sf = self._build(session_id, instance)
        self.relogins += 1

    # --- operations -------------------------------------------------------------------
    def query_pages(self, soql: str, *, include_deleted: bool = False) -> Iterator[Page]:
        """Run a SOQL query and yield it page by page, following `nextRecordsUrl`, so the
        caller can store each batch as it arrives. Each page request has the retry policy."""
        result = self._call("query", lambda: self.sf.query(soql, include_deleted=include_deleted))
        total = int(result.get("totalSize", 0))
        while True:
            yield Page(records=result.get("records", []), total_size=total)
            if result.get("done", True):
                return
            next_url = result["nextRecordsUrl"]
            result = self._call(
                "query_more", lambda url=next_url: self.sf.query_more(url, identifier_is_url=True)
            )

    def count(self, soql: str) -> int:
        """`SELECT COUNT() FROM ...`: the number of matching records."""
        return int(self._call("count", lambda: self.sf.query(soql))["totalSize"])

    def update_account(self, salesforce_id: str, fields: dict[str, Any]) -> None:
        """PATCH these fields of one Account (idempotent: sending twice changes nothing)."""
        self._call("update Account", lambda: self.sf.Account.update(salesforce_id, fields))

    def update_collection(self, sobject: str, records: list[dict[str, Any]]) -> list[RecordResult]:
        """PATCH composite/sobjects with allOrNone=false; each record has "Id" plus the fields
        to set (None clears). At most COLLECTION_LIMIT records. Results in the records' order.

        One record's failure (deleted, refused by validation, row locked) does not stop the
        others; it comes back as a failed RecordResult, `retryable` for transient codes such
        as UNABLE_TO_LOCK_ROW (sending the same batch again is harmless: updates are
        idempotent). A whole-request 4xx (INVALID_FIELD, malformed JSON) raises; 5xx,
        429 and dropped connections are retried like any call."""
        if len(records) > COLLECTION_LIMIT:
            raise ValueError(
                f"{len(records)} records: sObject Collections take at most {COLLECTION_LIMIT}"
            )
        ids = _check_records(records)
        if not records:
            return []
        body = {
            "allOrNone": False,
            "records": [
                {
                    "attributes": {"type": sobject},
                    "id": record_id,
                    **{k: v for k, v in record.items() if k != "Id"},
                }
                for record_id, record in zip(ids, records, strict=True)
            ],
        }
        # Serialised here, not with json=: requests cannot encode Decimal.
        data = json.dumps(body, default=_json_value)
        answers = self._call(
            f"update {sobject} collection",
            lambda: self.sf.restful("composite/sobjects", method="PATCH", data=data),
        )
        if not isinstance(answers, list) or len(answers) != len(ids):
            raise SalesforceGeneralError(
                "composite/sobjects",
                200,
                f"update {sobject} collection",
                f"expected {len(ids)} SaveResults, got "
                f"{len(answers) if isinstance(answers, list) else type(answers).__name__}",
            )
        # A failed SaveResult may carry no id: results are matched by position (Salesforce
        # returns them in request order).
        return [
            _save_result(record_id, answer) for record_id, answer in zip(ids, answers, strict=True)
        ]

    def _bulk_csv_get(self, name: str, path: str) -> str:
        """GET a Bulk API result CSV (not JSON, so not through `restful`)."""
        # The URL is built inside the call: a re-login may move the instance.
        response = self._call(
            name,
            lambda: self.sf._call_salesforce(
                "GET", self.sf.base_url + path, name=path, headers={"Accept": "text/csv"}
            ),
        )
        return response.content.decode("utf-8-sig")

    def bulk_update_submit(self, sobject: str, records: list[dict[str, Any]]) -> str:
        """Create a Bulk API 2.0 ingest job (operation update), upload the CSV, mark it
        UploadComplete; return the job id. Each record has "Id" plus the fields to set
        (None clears, written `#N/A`). Poll `bulk_update_results(job_id)` for the outcome.

        Each of the three calls has the retry policy. If the upload or the close fails
        for good, the job is aborted (best effort) and the error raised: submitting the
        same records again is safe."""
        _check_records(records)
        if not records:
            raise ValueError("no records to submit")
        data = _bulk_csv(records)
        if len(data) > BULK_MAX_BYTES:
            raise ValueError(f"{len(data)} bytes of CSV: split the records into more jobs")
        job = self._call(
            f"bulk update {sobject} create",
            lambda: self.sf.restful(
                "jobs/ingest",
                method="POST",
                data=json.dumps(
                    {
                        "object": sobject,
                        "operation": "update",
                        "contentType": "CSV",
                        "columnDelimiter": "COMMA",
                        "lineEnding": "LF",
                    }
                ),
            ),
        )
        job_id = str(job["id"])
        upload_path = f"jobs/ingest/{job_id}/batches"
        try:
            self._call(
                f"bulk update {sobject} upload",
                lambda: self.sf._call_salesforce(
                    "PUT",
                    self.sf.base_url + upload_path,
                    name=upload_path,
                    data=data,
                    headers={"Content-Type": "text/csv"},
                ),
            )
            self._set_job_state(job_id, "UploadComplete")
        except Exception:
            try:
                self._set_job_state(job_id, "Aborted")
            except ERRORS as exc:
                logger.warning("Could not abort Bulk API job %s (%s)", job_id, describe(exc))
            raise
        return job_id

    def _set_job_state(self, job_id: str, state: str) -> None:
        body = json.dumps({"state": state})
        self._call(
            f"bulk job {state}",
            lambda: self.sf.restful(f"jobs/ingest/{job_id}", method="PATCH", data=body),
        )

    def bulk_update_results(self, job_id: str) -> list[RecordResult] | None:
        """None while the job is not finished (Open, UploadComplete, InProgress); once
        JobComplete, one RecordResult per record: successfulResults, failedResults (error
        code and message from `sf__Error`) and unprocessedrecords (failed, retryable).
        Bulk API does not keep the upload's order: match results by `salesforce_id`.
        Raises BulkJobFailed for a Failed or Aborted job, with the job's errorMessage."""
        job = self._call("bulk job info", lambda: self.sf.restful(f"jobs/ingest/{job_id}"))
        state = str(job.get("state", ""))
        if state in BULK_PENDING_STATES:
            return None
        if state != "JobComplete":
            raise BulkJobFailed(job_id, state, str(job.get("errorMessage") or ""))
        base = f"jobs/ingest/{job_id}"
        results = []
        for row in _bulk_rows(self._bulk_csv_get("bulk successes", f"{base}/successfulResults/")):
            results.append(
                RecordResult(salesforce_id=row.get("sf__Id") or row.get("Id", ""), success=True)
            )
        for row in _bulk_rows(self._bulk_csv_get("bulk failures", f"{base}/failedResults/")):
            code, message = _bulk_error(row.get("sf__Error", ""))
            results.append(
                RecordResult(
                    salesforce_id=row.get("Id") or row.get("sf__Id", ""),
                    success=False,
                    error_code=code,
                    message=message,
                    retryable=code in RETRYABLE_RECORD_ERRORS,
                )
            )
        for row in _bulk_rows(
            self._bulk_csv_get("bulk unprocessed", f"{base}/unprocessedrecords/")
        ):
            results.append(
                RecordResult(
                    salesforce_id=row.get("Id", ""),
                    success=False,
                    error_code="UNPROCESSED",
                    message="the job did not process this record",
                    retryable=True,
                )
            )
        return results

    def api_usage(self) -> str:
        """`used/total` from the last Sforce-Limit-Info header, or '' if none was seen."""
        usage = self.sf.api_usage.get("api-usage")
        return f"{usage.used}/{usage.total}" if usage else ""


def _login_function(session: requests.Session) -> Callable[[], tuple[str, str]]:
    domain = settings.SALESFORCE_DOMAIN or "login"
    scratch_url = domain.rstrip("/") if domain.startswith("https://") else None

    def login() -> tuple[str, str]:
        return SalesforceLogin(
            username=settings.SALESFORCE_USERNAME,
            password=settings.SALESFORCE_PASSWORD,
            security_token=settings.SALESFORCE_SECURITY_TOKEN or "",
            sf_version=settings.SALESFORCE_API_VERSION,
            session=session,
            domain=None if scratch_url else domain,
            scratch_url=scratch_url,
        )

    return login


def client() -> SalesforceClient:
    """A client from settings; raises ImproperlyConfigured naming what is missing."""
    mode = _check_settings()
    session = _TimeoutSession(settings.SALESFORCE_TIMEOUT_SECONDS)
    policy = RetryPolicy.from_settings()
    common: dict[str, Any] = {
        "version": settings.SALESFORCE_API_VERSION,
        "session": session,
        # Plain dicts parse faster than OrderedDict; Decimal keeps currency exact.
        "object_pairs_hook": None,
        "parse_float": Decimal,
    }
    if mode == "session":
        sf = Salesforce(
            session_id=settings.SALESFORCE_SESSION_ID,
            instance_url=settings.SALESFORCE_INSTANCE_URL,
            **common,
        )
        return SalesforceClient(sf=sf, session=session, login=None, build=None, policy=policy)

    def build(session_id: str, instance: str) -> Salesforce:
        return Salesforce(session_id=session_id, instance=instance, **common)

    login = _login_function(session)
    # The login is retried like any call (a 503 from the login host is transient).
    sf = build(*policy.run("login", login, session))
    return SalesforceClient(sf=sf, session=session, login=login, build=build, policy=policy)
