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
