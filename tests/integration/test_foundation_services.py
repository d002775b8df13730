"""bin/services.py: which PostgreSQL and Redis `make run` / `make test` use."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def services(monkeypatch, tmp_path):
    monkeypatch.syspath_prepend(str(ROOT / "bin"))
    module = importlib.import_module("services")  # as bin/run.py and bin/test.py import it
    monkeypatch.setattr(module, "DATA", tmp_path / "data")
    return module


def test_urls_from_the_environment_are_used_as_they_are(services, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgres://u@db.example.com/p")
    monkeypatch.setenv("REDIS_URL", "redis://cache.example.com:6379/4")
    found = services.ensure(prefer_local=False)
    assert (found.database_url, found.redis_url) == (
        "postgres://u@db.example.com/p",
        "redis://cache.example.com:6379/4",
    )
    assert found.notes == []
    found.stop()


def test_embedded_redis_starts_keeps_its_data_and_stops(services, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgres://u@db.example.com/p")
    monkeypatch.delenv("REDIS_URL", raising=False)
    found = services.ensure(prefer_local=False)
    try:
        assert "embedded Redis" in found.notes[0]
        client = redis.Redis.from_url(found.redis_url)
        assert client.ping()
        client.set("portfolio-test", "kept")
        client.close()
    finally:
        found.stop()
    port = int(found.redis_url.rsplit(":", 1)[1].split("/")[0])
    assert not services.reachable("127.0.0.1", port, timeout=0.5)
    # The next run finds the data again (make run keeps .data/ between runs).
    again = services.ensure(prefer_local=False)
    try:
        assert redis.Redis.from_url(again.redis_url).get("portfolio-test") == b"kept"
    finally:
        again.stop()


def test_dead_handles_of_a_killed_run_are_forgotten(services, tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    pgdata = tmp_path / "postgres"
    pgdata.mkdir()
    handles = pgdata / ".handle_pids.json"
    handles.write_text(json.dumps([dead.pid, os.getpid()]))
    services._forget_dead_handles(pgdata)
    assert json.loads(handles.read_text()) == [os.getpid()]
