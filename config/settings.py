"""Portfolio settings: one file, every value read from the environment.

A missing or malformed variable stops start-up with a message naming it. The defaults
are production-safe: DEBUG is off unless asked for, cookies are secure unless DEBUG.
`DATABASE_URL` and `REDIS_URL` are set by `bin/run.py` (`make run`) and `bin/test.py`
(`make test`) to the embedded servers when the user gave none (see README).
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from urllib.parse import urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# `.env` (written by `make run`) fills in what the environment lacks; the environment wins.
# PORTFOLIO_ENV_FILE names another file, or is empty to read none (tests, containers).
_ENV_FILE = os.environ.get("PORTFOLIO_ENV_FILE", str(BASE_DIR / ".env"))
if _ENV_FILE and Path(_ENV_FILE).is_file():
    environ.Env.read_env(_ENV_FILE, overwrite=False)


_TRUE = {"1", "true", "yes", "on", "y"}
_FALSE = {"0", "false", "no", "off", "n"}


def _strict(raw: str, cast):
    """Parse bool/int/float strictly: django-environ reads `DEBUG=maybe` as False and
    `TIMEOUT=1x` as 1.0; a typo must stop start-up instead."""
    value = raw.strip()
    if cast is bool:
        if value.lower() in _TRUE:
            return True
        if value.lower() in _FALSE:
            return False
        raise ValueError(f"expected one of 1/0, true/false, yes/no, on/off; got {raw!r}")
    return cast(value)  # int("abc"), float("1x") raise ValueError


def _env(name: str, cast, default=environ.Env.NOTSET):
    """Read one variable; a missing or malformed value names the variable in the error."""
    try:
        if cast in (bool, int, float):
            raw = env.str(name, default=None)
            if raw is None:
                if default is environ.Env.NOTSET:
                    raise ImproperlyConfigured(f"Set the environment variable {name}.")
                return default
            return _strict(raw, cast)
        return env.get_value(name, cast=cast, default=default)
    except ImproperlyConfigured:
        raise
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured(f"Environment variable {name} is malformed: {exc}") from exc


DEBUG: bool = _env("DEBUG", bool, False)

SECRET_KEY: str = _env("SECRET_KEY", str, "" if not DEBUG else "dev-insecure-secret-key-change-me")
if not SECRET_KEY:
    raise ImproperlyConfigured(
        "Set the SECRET_KEY environment variable (any long random string); "
        "`make run` writes one to .env for you."
    )

ALLOWED_HOSTS: list[str] = _env("ALLOWED_HOSTS", list, ["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS: list[str] = _env("CSRF_TRUSTED_ORIGINS", list, [])
if any(not o.startswith(("http://", "https://")) for o in CSRF_TRUSTED_ORIGINS):
    raise ImproperlyConfigured("CSRF_TRUSTED_ORIGINS must list origins like https://host.")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "template_partials",
    "django_celery_beat",
    "rest_framework",
    # Sign-in throttling and lockout by user and by client address (issue 13).
    "axes",
    "pgtrigger",
    "pghistory",
    "integrations",
    "portfolio",
    "prioritization",
    "triage",
    "engagement",
    # Notifications: the bell, the daily digest, team chat webhooks (issue 15).
    "notifications",
    # Product usage per account and month, and the health signals read from it (issue 16).
    "usage",
    # The user's inbox, global search and saved views (issue 15).
    "workspace",
    "ui",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Every page requires login; public views opt out with @login_not_required.
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    # Attaches the user and URL of a write request to the history of tracked models.
    "pghistory.middleware.HistoryMiddleware",
    "config.middleware.ContentSecurityPolicyMiddleware",
    # Idle timeout and absolute lifetime of a signed-in session; no-store for its pages.
    "config.middleware.SessionLifetimeMiddleware",
    "config.middleware.PrivateCacheMiddleware",
    # A write request makes cached page values stale (portfolio/datacache.py).
    "portfolio.datacache.DataVersionMiddleware",
    # Redis (the task queue) down: a clear 503 instead of a 500 (integrations/enqueue.py).
    "integrations.enqueue.BrokerUnavailableMiddleware",
    # Django's own 400/413 pages become JSON under /api/ (config/api.py).
    "config.api.JSONErrorsMiddleware",
    # Last, as django-axes asks: answers a locked-out sign-in with its page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "config.context_processors.roles",
            ],
        },
    },
]

# --- Data stores ----------------------------------------------------------------------
# PostgreSQL only: bulk upserts, advisory locks and trigger-based history rely on it.
DATABASE_URL: str = _env("DATABASE_URL", str, "postgres://postgres@127.0.0.1:5432/portfolio")
try:
    DATABASES = {"default": env.db_url_config(DATABASE_URL)}
except (ValueError, KeyError) as exc:
    raise ImproperlyConfigured(f"Environment variable DATABASE_URL is malformed: {exc}") from exc
if DATABASES["default"].get("ENGINE") != "django.db.backends.postgresql":
    raise ImproperlyConfigured("DATABASE_URL must point at PostgreSQL (postgres://...).")
DATABASES["default"]["CONN_MAX_AGE"] = _env("DATABASE_CONN_MAX_AGE", int, 60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# No JIT compilation on Portfolio's connections unless DATABASE_JIT is set: PostgreSQL
# compiles every statement estimated above `jit_above_cost` (100,000), and ours are short
# (a page's, a batch's) yet often estimated above it: the team view's health trend at 1M
# accounts spent 20 ms of its 65 ms compiling, the account history triggers 0.5-0.8 s a
# batch (portfolio migration 0017), the usage import 0.5-0.8 s a statement
# (docs/performance.md).
if not _env("DATABASE_JIT", bool, False):
    _options = DATABASES["default"].setdefault("OPTIONS", {})
    _options["options"] = f"{_options.get('options', '')} -c jit=off".strip()
# Parallel test runs on one server (e.g. several developers' checkouts) each get their own
# test database through TEST_DB_SUFFIX.
_test_suffix = _env("TEST_DB_SUFFIX", str, "")
DATABASES["default"]["TEST"] = {
    "NAME": f"test_{DATABASES['default']['NAME']}{'_' + _test_suffix if _test_suffix else ''}"
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL: str = _env("REDIS_URL", str, "redis://127.0.0.1:6379/0")
if not REDIS_URL.startswith(("redis://", "rediss://", "unix://")):
    raise ImproperlyConfigured("REDIS_URL must be a redis://, rediss:// or unix:// URL.")

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "portfolio",
    }
}

# --- Auth -----------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
# django-axes: after AXES_FAILURE_LIMIT wrong passwords for one username, or from one client
# address, sign-in is refused for AXES_COOLOFF_MINUTES (an admin unlocks earlier: Django
# admin -> Axes -> Access attempts, delete; or `manage.py axes_reset_username NAME`).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    # ModelBackend reading the user's roles in the same query (portfolio/auth.py).
    "portfolio.auth.RoleBackend",
]
AXES_FAILURE_LIMIT: int = _env("AXES_FAILURE_LIMIT", int, 10)
AXES_COOLOFF_TIME = dt.timedelta(minutes=_env("AXES_COOLOFF_MINUTES", int, 15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = False
# Customer e-mails a user may queue in an hour (engagement.services.emails.email_queue).
EMAIL_RATE_PER_USER_PER_HOUR: int = _env("EMAIL_RATE_PER_USER_PER_HOUR", int, 30)
# The largest API body read (1 MiB); larger is a JSON 413 naming the size.
API_MAX_BODY_BYTES: int = _env("API_MAX_BODY_BYTES", int, 1024 * 1024)
LOGIN_REDIRECT_URL = "ui:home"
LOGOUT_REDIRECT_URL = "login"

# --- Company sign-in (OIDC) -----------------------------------------------------------
# OpenID Connect authorization code flow with PKCE (mozilla-django-oidc, portfolio/oidc.py),
# on when OIDC_ISSUER is set. The endpoints come from the issuer's discovery document,
# fetched at the first sign-in. The names OIDC_RP_* / OIDC_CREATE_USER are the library's.
OIDC_ISSUER: str = _env("OIDC_ISSUER", str, "").rstrip("/")
OIDC_ENABLED = bool(OIDC_ISSUER)
OIDC_PROVIDER_NAME: str = _env("OIDC_PROVIDER_NAME", str, "single sign-on")
OIDC_RP_CLIENT_ID: str = _env("OIDC_CLIENT_ID", str, "")
OIDC_RP_CLIENT_SECRET: str = _env("OIDC_CLIENT_SECRET", str, "")
OIDC_RP_SCOPES: str = _env("OIDC_SCOPES", str, "openid email profile")
OIDC_RP_SIGN_ALGO: str = _env("OIDC_SIGN_ALGO", str, "RS256")
OIDC_GROUPS_CLAIM: str = _env("OIDC_GROUPS_CLAIM", str, "groups")


def _group_pairs(name: str, pairs: list[str], *, keys: tuple[str, ...] = ()) -> dict[str, set[str]]:
    """`Key=provider group` pairs, comma-separated (a key may come more than once), as
    {key: {provider groups}}; ImproperlyConfigured naming the variable when malformed."""
    mapping: dict[str, set[str]] = {}
    for pair in pairs:
        key, sep, group = (part.strip() for part in pair.partition("="))
        if not sep or not key or not group or (keys and key not in keys):
            expected = ", ".join(f"{k}=<group>" for k in keys) if keys else "<name>=<group>"
            raise ImproperlyConfigured(
                f"Environment variable {name} is malformed at {pair!r}: expected {expected}, "
                "separated by commas."
            )
        mapping.setdefault(key, set()).add(group)
    return mapping


# "TAM=cs-tams,Manager=cs-managers,Admin=portfolio-admins": Portfolio group -> provider
# groups. Only the groups named here follow the provider; the others stay as admins set them.
OIDC_ROLE_GROUPS = _group_pairs(
    "OIDC_ROLE_GROUPS", _env("OIDC_ROLE_GROUPS", list, []), keys=("TAM", "Manager", "Admin")
)
# "EMEA Enterprise=cs-emea,US West=cs-us-west": Portfolio team name -> provider groups. A
# user in the provider group is one of the team's TAMs; only the teams named here follow
# the provider. Teams and their managers are set up in Django admin.
OIDC_TEAM_GROUPS = _group_pairs("OIDC_TEAM_GROUPS", _env("OIDC_TEAM_GROUPS", list, []))
OIDC_CREATE_USER: bool = _env("OIDC_CREATE_USERS", bool, True)
# Only these e-mail domains may sign in with the provider (empty: any it vouches for).
OIDC_ALLOWED_EMAIL_DOMAINS: list[str] = [
    d.strip().lower().lstrip("@") for d in _env("OIDC_ALLOWED_EMAIL_DOMAINS", list, []) if d.strip()
]
# With OIDC on, local passwords can be switched off: the provider is then the only way in.
PASSWORD_LOGIN_ENABLED: bool = _env("PASSWORD_LOGIN_ENABLED", bool, True)
OIDC_TIMEOUT: float = _env("OIDC_TIMEOUT_SECONDS", float, 10.0)
OIDC_USE_PKCE = True
OIDC_USE_NONCE = True
if OIDC_ENABLED:
    for _name, _value in (
        ("OIDC_CLIENT_ID", OIDC_RP_CLIENT_ID),
        ("OIDC_CLIENT_SECRET", OIDC_RP_CLIENT_SECRET),
    ):
        if not _value:
            raise ImproperlyConfigured(f"OIDC_ISSUER is set but {_name} is missing.")
    _issuer = urlsplit(OIDC_ISSUER)
    # Plain HTTP only on this machine (a provider run for development).
    if not (_issuer.scheme == "https" or _issuer.hostname in ("127.0.0.1", "localhost")):
        raise ImproperlyConfigured("OIDC_ISSUER must be an https:// URL.")
    # After axes' backend, which refuses a locked-out client address before any sign-in.
    AUTHENTICATION_BACKENDS.append("portfolio.oidc.OIDCBackend")
    if not PASSWORD_LOGIN_ENABLED:
        AUTHENTICATION_BACKENDS.remove("portfolio.auth.RoleBackend")

# --- Security -------------------------------------------------------------------------
SECURE_SSL_REDIRECT: bool = _env("SECURE_SSL_REDIRECT", bool, not DEBUG)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE: bool = _env("SESSION_COOKIE_SECURE", bool, not DEBUG)
CSRF_COOKIE_SECURE: bool = _env("CSRF_COOKIE_SECURE", bool, not DEBUG)
SECURE_HSTS_SECONDS: int = _env("SECURE_HSTS_SECONDS", int, 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
# A session ends after this long without a request (8 h: a working day) ...
SESSION_IDLE_TIMEOUT_SECONDS: int = _env("SESSION_IDLE_TIMEOUT_SECONDS", int, 8 * 3600)
# ... and after this long in any case (the cookie's age; 7 days).
SESSION_COOKIE_AGE: int = _env("SESSION_ABSOLUTE_LIFETIME_SECONDS", int, 7 * 24 * 3600)
# Error pages (DEBUG) and error reports never show secrets: every setting whose name says
# session, token, password, key or secret, and the URLs that carry passwords.
DEFAULT_EXCEPTION_REPORTER_FILTER = "config.errors.SecretSettingsFilter"
# /healthz is probed over plain HTTP by load balancers and compose healthchecks.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]

# --- i18n / static --------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = _env("TIME_ZONE", str, "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS: list = [BASE_DIR / "static"]
# htmx comes from the npm registry (`npm ci`, run by make), never committed.
_HTMX_DIST = BASE_DIR / "node_modules" / "htmx.org" / "dist"
if _HTMX_DIST.is_dir():
    STATICFILES_DIRS.append(("vendor/htmx", _HTMX_DIST))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = DEBUG

EMAIL_BACKEND: str = _env("EMAIL_BACKEND", str, "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL: str = _env("DEFAULT_FROM_EMAIL", str, "portfolio@localhost")
# Links in e-mails and chat messages (the digest, team webhooks) start with this.
PORTFOLIO_BASE_URL: str = _env("PORTFOLIO_BASE_URL", str, "http://127.0.0.1:8000")

# --- REST API -------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Personal tokens, stored as digests, named, scoped, expiring (portfolio/api_tokens.py);
        # first, so that a refused token is a 401 with WWW-Authenticate.
        "portfolio.api_tokens.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # JSON only, size-checked, deep nesting a 400 (config/api.py).
    "DEFAULT_PARSER_CLASSES": ["config.api.SafeJSONParser"],
    # Per user (session or token) and per client address for the unauthenticated; a
    # throttled call gets 429 with Retry-After (config/throttles.py).
    "DEFAULT_THROTTLE_CLASSES": [
        "config.throttles.UserOrTokenRateThrottle",
        "config.throttles.AnonymousRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "user": _env("API_RATE_PER_USER", str, "120/min"),
        "anon": _env("API_RATE_ANONYMOUS", str, "20/min"),
    },
}

# --- Celery ---------------------------------------------------------------------------
# docs/failure-modes-celery.md says what each of these does when a worker, Redis or
# PostgreSQL goes away.
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = REDIS_URL
# A task is acknowledged when it ends, so a worker killed mid-task leaves it in Redis's
# "unacked" set, from which any worker puts it back on its queue once it is older than the
# visibility timeout. Every task is therefore safe to run twice (DESIGN.md).
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# A task that failed or hit its time limit is acknowledged (not redelivered for ever).
CELERY_TASK_ACKS_ON_FAILURE_OR_TIMEOUT = True
# Lost broker connection: the acks of running late-ack tasks can no longer be sent and the
# broker redelivers them, so the worker cancels them rather than run them twice.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE: str = _env("CELERY_TASK_DEFAULT_QUEUE", str, "portfolio")
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Seconds after which a task a dead worker took is handed to another worker. Every task's
# hard time limit stays below it (checked below), so a live worker's task is never
# handed out twice; a killed worker's is picked up again within this many seconds.
CELERY_VISIBILITY_TIMEOUT: int = _env("CELERY_VISIBILITY_TIMEOUT", int, 900)
# Hard time limits (seconds): every task, and the known long ones (syncs, sweeps, runs over
# every account). The soft limit, a tenth earlier, lets a task record why it stopped.
CELERY_TASK_TIME_LIMIT: int = _env("CELERY_TASK_TIME_LIMIT", int, 300)
CELERY_LONG_TASK_TIME_LIMIT: int = _env("CELERY_LONG_TASK_TIME_LIMIT", int, 780)
for _name, _limit in (
    ("CELERY_TASK_TIME_LIMIT", CELERY_TASK_TIME_LIMIT),
    ("CELERY_LONG_TASK_TIME_LIMIT", CELERY_LONG_TASK_TIME_LIMIT),
):
    if not 0 < _limit < CELERY_VISIBILITY_TIMEOUT:
        raise ImproperlyConfigured(
            f"{_name} ({_limit} s) must be positive and below CELERY_VISIBILITY_TIMEOUT "
            f"({CELERY_VISIBILITY_TIMEOUT} s), or a running task is handed to a second worker."
        )


def _soft(limit: int) -> int:
    return limit - max(1, limit // 10)


CELERY_TASK_SOFT_TIME_LIMIT = _soft(CELERY_TASK_TIME_LIMIT)
# The known long tasks get CELERY_LONG_TASK_TIME_LIMIT; config/celery.py applies it, and
# caps any task whose own limits would reach the visibility timeout.
LONG_TASKS = (
    "portfolio.sync_salesforce",
    # The write-back of one change can carry a quarterly review's thousands of accounts.
    "portfolio.salesforce_writeback",
    "portfolio.salesforce_writeback_sweep",
    "portfolio.salesforce_writeback_confirmed",
    "prioritization.tasks.reevaluate_priorities_quarterly",
    "prioritization.tasks.reevaluate_accounts",
    "triage.health_assess_all",
    "triage.sync_gitlab",
    "engagement.customer_issues_sync_all",
    "engagement.collaboration_projects_transfer_paid",
)
LONG_TASK_LIMITS = {
    "time_limit": CELERY_LONG_TASK_TIME_LIMIT,
    "soft_time_limit": _soft(CELERY_LONG_TASK_TIME_LIMIT),
}
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": CELERY_VISIBILITY_TIMEOUT,
    # Workers look for such tasks every few seconds (kombu's default: every 100 s).
    "unacked_restore_interval": min(15, max(1, CELERY_VISIBILITY_TIMEOUT // 4)),
    "unacked_restore_throttle": 1,
    # A Redis that is down or unreachable fails an enqueue in seconds, not minutes.
    "socket_connect_timeout": 3,
    "socket_timeout": 30,
}
CELERY_REDIS_SOCKET_CONNECT_TIMEOUT = 3
# The web subscribes to results of what it enqueues; with Redis down that must fail fast
# (the default retries 20 times, a second apart, inside the request).
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {
    "retry_policy": {"max_retries": 2, "interval_start": 0, "interval_step": 0.2}
}
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = TIME_ZONE
# Seeded into django-celery-beat by migrations; admins edit them in Django admin.
CELERY_BEAT_SCHEDULE: dict = {}

# --- Business settings ----------------------------------------------------------------
# "The current target per TAM for the TAM-assigned segment is 3.6M USD per TAM"
BOOK_OF_BUSINESS_TARGET_USD: int = _env("BOOK_OF_BUSINESS_TARGET_USD", int, 3_600_000)
# The TAM alignment threshold per segment, in USD ARR: the organisation's own numbers
# (the handbook links "below the TAM alignment threshold" to a page it does not include
# and states none). Used by the demo to choose TAM-assigned accounts, and by the panel's
# disengagement hint, shown only when the customer also "downgrades or churns" (the TAM's
# downgrading/cancelling signal; engagement.rules.below_alignment_threshold).
TAM_ALIGNMENT_THRESHOLD_USD: dict[str, int] = {
    "enterprise": _env("TAM_ALIGNMENT_THRESHOLD_ENTERPRISE_USD", int, 100_000),
    "commercial": _env("TAM_ALIGNMENT_THRESHOLD_COMMERCIAL_USD", int, 50_000),
    "public_sector": _env("TAM_ALIGNMENT_THRESHOLD_PUBLIC_SECTOR_USD", int, 100_000),
}
# Fiscal year start month (February: FY27 runs Feb 2026 - Jan 2027).
FISCAL_YEAR_START_MONTH: int = _env("FISCAL_YEAR_START_MONTH", int, 2)
if not 1 <= FISCAL_YEAR_START_MONTH <= 12:
    raise ImproperlyConfigured("FISCAL_YEAR_START_MONTH must be a month number from 1 to 12.")

# --- Salesforce -----------------------------------------------------------------------
SALESFORCE_INSTANCE_URL: str = _env("SALESFORCE_INSTANCE_URL", str, "")
SALESFORCE_SESSION_ID: str = _env("SALESFORCE_SESSION_ID", str, "")
SALESFORCE_USERNAME: str = _env("SALESFORCE_USERNAME", str, "")
SALESFORCE_PASSWORD: str = _env("SALESFORCE_PASSWORD", str, "")
SALESFORCE_SECURITY_TOKEN: str = _env("SALESFORCE_SECURITY_TOKEN", str, "")
SALESFORCE_DOMAIN: str = _env("SALESFORCE_DOMAIN", str, "login")
SALESFORCE_API_VERSION: str = _env("SALESFORCE_API_VERSION", str, "59.0")
SALESFORCE_ENABLED = bool(SALESFORCE_SESSION_ID or SALESFORCE_USERNAME)
SALESFORCE_BATCH_SIZE: int = _env("SALESFORCE_BATCH_SIZE", int, 2000)
# A first load of at least this many records into an empty table sets its secondary indexes
# and foreign keys aside and rebuilds them at the end (integrations/bulkload.py).
SALESFORCE_BULK_LOAD_MIN: int = _env("SALESFORCE_BULK_LOAD_MIN", int, 5000)
SALESFORCE_TIMEOUT_SECONDS: float = _env("SALESFORCE_TIMEOUT_SECONDS", float, 30.0)
SALESFORCE_MAX_RETRIES: int = _env("SALESFORCE_MAX_RETRIES", int, 5)
# Retried calls wait a random time up to BACKOFF * 2**attempt (full jitter), capped at MAX.
SALESFORCE_BACKOFF_SECONDS: float = _env("SALESFORCE_BACKOFF_SECONDS", float, 1.0)
SALESFORCE_BACKOFF_MAX_SECONDS: float = _env("SALESFORCE_BACKOFF_MAX_SECONDS", float, 60.0)
# Write-back (portfolio/writeback.py). The brake: a sweep that would change more than this
# share of the accounts for one field (and more than BRAKE_MIN_CHANGES of them), or clear
# any Salesforce value, stops before writing and waits for an admin's confirmation.
SALESFORCE_WRITEBACK_BRAKE_SHARE: float = _env("SALESFORCE_WRITEBACK_BRAKE_SHARE", float, 0.05)
SALESFORCE_WRITEBACK_BRAKE_MIN_CHANGES: int = _env(
    "SALESFORCE_WRITEBACK_BRAKE_MIN_CHANGES", int, 20
)
# A sweep of at least this many records goes through Bulk API 2.0 jobs instead of sObject
# Collections calls of 200 records (0 = never).
SALESFORCE_WRITEBACK_BULK_MIN: int = _env("SALESFORCE_WRITEBACK_BULK_MIN", int, 5000)
# A record Salesforce refuses with a transient error (UNABLE_TO_LOCK_ROW) is tried this many
# times in all before it is marked refused.
SALESFORCE_WRITEBACK_MAX_ATTEMPTS: int = _env("SALESFORCE_WRITEBACK_MAX_ATTEMPTS", int, 5)
# One sweep stops after the chunk that passes this many seconds and enqueues the rest, so
# no task comes near its time limit or the broker's visibility timeout.
SALESFORCE_WRITEBACK_SWEEP_SECONDS: float = _env("SALESFORCE_WRITEBACK_SWEEP_SECONDS", float, 600.0)
# ... and never past four fifths of the long tasks' soft time limit, whatever it is set to.
SALESFORCE_WRITEBACK_SWEEP_SECONDS = min(
    SALESFORCE_WRITEBACK_SWEEP_SECONDS, 0.8 * _soft(CELERY_LONG_TASK_TIME_LIMIT)
)
# Field names of the org; every one can be renamed for an org that differs.
SALESFORCE_FIELDS: dict[str, str] = {
    "account_arr": _env("SALESFORCE_FIELD_ACCOUNT_ARR", str, "ARR__c"),
    "account_region": _env("SALESFORCE_FIELD_ACCOUNT_REGION", str, "Region__c"),
    "account_segment": _env("SALESFORCE_FIELD_ACCOUNT_SEGMENT", str, "Sales_Segment__c"),
    "account_tam": _env("SALESFORCE_FIELD_ACCOUNT_TAM", str, "Technical_Account_Manager__c"),
    "account_health": _env("SALESFORCE_FIELD_ACCOUNT_HEALTH", str, "Health_Score__c"),
    "account_priority": _env("SALESFORCE_FIELD_ACCOUNT_PRIORITY", str, "CSM_Priority__c"),
    "account_renewal_date": _env("SALESFORCE_FIELD_ACCOUNT_RENEWAL_DATE", str, "Renewal_Date__c"),
    "account_customer_since": _env(
        "SALESFORCE_FIELD_ACCOUNT_CUSTOMER_SINCE", str, "Customer_Since__c"
    ),
    "account_plan": _env("SALESFORCE_FIELD_ACCOUNT_PLAN", str, "GitLab_Plan__c"),
    "account_digital_only": _env("SALESFORCE_FIELD_ACCOUNT_DIGITAL_ONLY", str, "Digital_Only__c"),
    "account_lam": _env("SALESFORCE_FIELD_ACCOUNT_LAM", str, "LAM__c"),
    "account_licensed_seats": _env(
        "SALESFORCE_FIELD_ACCOUNT_LICENSED_SEATS", str, "Licensed_Seats__c"
    ),
    "opportunity_uptier_type": _env("SALESFORCE_OPPORTUNITY_UPTIER_TYPE", str, "Up-tier"),
}

# --- GitLab ---------------------------------------------------------------------------
GITLAB_URL: str = _env("GITLAB_URL", str, "")
GITLAB_TOKEN: str = _env("GITLAB_TOKEN", str, "")
GITLAB_TRIAGE_PROJECT: str = _env("GITLAB_TRIAGE_PROJECT", str, "")
GITLAB_ACCOUNT_MANAGEMENT_GROUP: str = _env("GITLAB_ACCOUNT_MANAGEMENT_GROUP", str, "")
GITLAB_PRESALES_GROUP: str = _env("GITLAB_PRESALES_GROUP", str, "")
GITLAB_ENTERPRISE_TEMPLATE_PROJECT: str = _env("GITLAB_ENTERPRISE_TEMPLATE_PROJECT", str, "")
GITLAB_COMMERCIAL_TEMPLATE_PROJECT: str = _env("GITLAB_COMMERCIAL_TEMPLATE_PROJECT", str, "")
GITLAB_TIMEOUT_SECONDS: float = _env("GITLAB_TIMEOUT_SECONDS", float, 30.0)
GITLAB_MAX_RETRIES: int = _env("GITLAB_MAX_RETRIES", int, 5)
if GITLAB_URL and not GITLAB_TOKEN:
    raise ImproperlyConfigured("GITLAB_URL is set but GITLAB_TOKEN is missing.")
if SALESFORCE_USERNAME and not SALESFORCE_PASSWORD:
    raise ImproperlyConfigured("SALESFORCE_USERNAME is set but SALESFORCE_PASSWORD is missing.")
if SALESFORCE_SESSION_ID and not SALESFORCE_INSTANCE_URL:
    raise ImproperlyConfigured(
        "SALESFORCE_SESSION_ID is set but SALESFORCE_INSTANCE_URL is missing."
    )

# --- Logging: never the secrets, always the run ids -----------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": _env("LOG_LEVEL", str, "INFO")},
    "loggers": {
        # simple-salesforce and urllib3 log request URLs containing session ids at DEBUG.
        "simple_salesforce": {"level": "WARNING"},
        "urllib3": {"level": "WARNING"},
    },
}
