"""Settings: a missing or malformed variable stops start-up naming it; production values
pass `manage.py check --deploy` with nothing to report.

Each case starts a fresh interpreter (settings are read once, at import), with no `.env`:
about two seconds a case, so they live with the integration tests, not in the fast unit
suite.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SETUP = "import django; django.setup(); print('ok')"

PRODUCTION = {
    "SECRET_KEY": secrets.token_urlsafe(50),
    "ALLOWED_HOSTS": "portfolio.example.com",
    "DATABASE_URL": "postgres://portfolio:secret@db.example.com:5432/portfolio",
    "REDIS_URL": "redis://redis.example.com:6379/0",
}


def run(code_or_args: str | list[str], **env: str) -> subprocess.CompletedProcess:
    # A clean environment: nothing of this process (e.g. DJANGO_ALLOW_ASYNC_UNSAFE, set for
    # Playwright, which check --deploy rightly reports) leaks into "production".
    base = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "TMPDIR") if k in os.environ}
    base.update({"PORTFOLIO_ENV_FILE": "", "DJANGO_SETTINGS_MODULE": "config.settings", **env})
    args = ["-c", code_or_args] if isinstance(code_or_args, str) else code_or_args
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=base, capture_output=True, text=True, timeout=120
    )


def test_production_environment_starts():
    result = run(SETUP, **PRODUCTION)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_missing_secret_key_stops_start_up_naming_it():
    env = {k: v for k, v in PRODUCTION.items() if k != "SECRET_KEY"}
    result = run(SETUP, **env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "SECRET_KEY" in result.stderr


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DEBUG", "maybe"),
        ("DEBUG", "yes please"),
        ("FISCAL_YEAR_START_MONTH", "13"),
        ("FISCAL_YEAR_START_MONTH", "feb"),
        ("SALESFORCE_BATCH_SIZE", "abc"),
        ("SALESFORCE_TIMEOUT_SECONDS", "1x"),
        ("SECURE_HSTS_SECONDS", "one year"),
        ("SESSION_COOKIE_SECURE", "2"),
        ("DATABASE_CONN_MAX_AGE", "1.5"),
    ],
)
def test_malformed_variable_stops_start_up_naming_it(name, value):
    result = run(SETUP, **{**PRODUCTION, name: value})
    assert result.returncode != 0, f"{name}={value!r} was accepted"
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("django.core.exceptions.ImproperlyConfigured")
    assert name in last_line


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"DATABASE_URL": "sqlite:///portfolio.db"}, "DATABASE_URL"),
        ({"DATABASE_URL": "not a url"}, "DATABASE_URL"),
        ({"DATABASE_URL": "postgres://u:p@db:port/portfolio"}, "DATABASE_URL"),
        ({"REDIS_URL": "localhost:6379"}, "REDIS_URL"),
        ({"CSRF_TRUSTED_ORIGINS": "portfolio.example.com"}, "CSRF_TRUSTED_ORIGINS"),
        ({"GITLAB_URL": "https://gitlab.example.com"}, "GITLAB_TOKEN"),
        ({"SALESFORCE_USERNAME": "ops@example.com"}, "SALESFORCE_PASSWORD"),
        ({"SALESFORCE_SESSION_ID": "00Dxx!abc"}, "SALESFORCE_INSTANCE_URL"),
    ],
)
def test_inconsistent_settings_stop_start_up_naming_the_variable(env, named):
    result = run(SETUP, **{**PRODUCTION, **env})
    assert result.returncode != 0
    assert named in result.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1", True), ("true", True), ("On", True), ("0", False), ("no", False), ("off", False)],
)
def test_debug_accepts_the_usual_spellings(value, expected):
    code = "import django; django.setup(); from django.conf import settings; print(settings.DEBUG)"
    result = run(code, **{**PRODUCTION, "DEBUG": value})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(expected)


def test_check_deploy_reports_nothing_with_production_values():
    result = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], **PRODUCTION)
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_flags_debug_in_production():
    """The check above can fail: the same environment with DEBUG on is reported."""
    env = {**PRODUCTION, "DEBUG": "1"}
    result = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], **env)
    assert result.returncode != 0
    assert "security.W018" in result.stderr


def test_env_file_fills_in_but_environment_wins(tmp_path):
    env_file = tmp_path / "portfolio.env"
    env_file.write_text("DEBUG=1\nTIME_ZONE=Europe/Amsterdam\n")
    code = (
        "import django; django.setup(); from django.conf import settings; "
        "print(settings.DEBUG, settings.TIME_ZONE)"
    )
    result = run(code, **{**PRODUCTION, "PORTFOLIO_ENV_FILE": str(env_file), "DEBUG": "0"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "Europe/Amsterdam"]
