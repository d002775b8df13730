"""Every environment variable config/settings.py reads is explained in README.md."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def variables_read_by_settings() -> set[str]:
    source = (ROOT / "config" / "settings.py").read_text()
    names = set(re.findall(r'_env\(\s*"([A-Z0-9_]+)"', source))
    names |= set(re.findall(r'os\.environ\.get\(\s*"([A-Z0-9_]+)"', source))
    return names


def test_settings_read_the_variables_we_expect():
    names = variables_read_by_settings()
    assert {"SECRET_KEY", "DEBUG", "DATABASE_URL", "REDIS_URL", "ALLOWED_HOSTS"} <= names
    assert {"SALESFORCE_USERNAME", "GITLAB_URL", "PORTFOLIO_ENV_FILE"} <= names


def test_every_variable_is_documented_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    missing = sorted(name for name in variables_read_by_settings() if f"`{name}`" not in readme)
    assert not missing, f"add these to README.md, 'Configuration': {missing}"
