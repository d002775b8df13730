"""`make run` writes `.env` (bin/run.py): a generated SECRET_KEY and DEBUG=1, once."""

from __future__ import annotations

import importlib.util
import stat
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def run_py():
    spec = importlib.util.spec_from_file_location("portfolio_bin_run", ROOT / "bin" / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.delenv("DEBUG", raising=False)


def test_fresh_env_file_gets_a_secret_and_debug(run_py, tmp_path):
    path = tmp_path / ".env"
    assert run_py.ensure_env_file(path) == ["SECRET_KEY", "DEBUG"]
    values = run_py.read_env_file(path)
    assert len(values["SECRET_KEY"]) >= 50
    assert values["DEBUG"] == "1"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # Running again changes nothing: the secret stays the same across runs.
    assert run_py.ensure_env_file(path) == []
    assert run_py.read_env_file(path) == values


def test_existing_values_are_kept(run_py, tmp_path):
    path = tmp_path / ".env"
    path.write_text("# mine\nSECRET_KEY='kept-secret'\nDATABASE_URL=postgres://db/portfolio")
    assert run_py.ensure_env_file(path) == ["DEBUG"]
    values = run_py.read_env_file(path)
    assert values == {
        "SECRET_KEY": "kept-secret",
        "DATABASE_URL": "postgres://db/portfolio",
        "DEBUG": "1",
    }


def test_environment_wins_over_writing(run_py, tmp_path, monkeypatch):
    monkeypatch.setenv("SECRET_KEY", "from-the-environment")
    monkeypatch.setenv("DEBUG", "0")
    path = tmp_path / ".env"
    assert run_py.ensure_env_file(path) == []
    assert not path.exists()


def test_banner_names_the_url_and_the_demo_logins(run_py):
    from portfolio import demo_data

    text = run_py.banner("http://127.0.0.1:8123/")
    assert "http://127.0.0.1:8123/" in text
    assert "Demo logins" in text
    for username in ("tam1", "manager1", "admin"):
        assert username in text
    assert run_py.DEMO_PASSWORD == demo_data.DEMO_PASSWORD
    assert demo_data.DEMO_PASSWORD in text


def test_web_worker_and_beat_commands(run_py):
    commands = run_py.processes(8123)
    assert list(commands) == ["web", "worker", "beat"]
    assert "127.0.0.1:8123" in commands["web"]
    assert "django_celery_beat.schedulers:DatabaseScheduler" in commands["beat"]
