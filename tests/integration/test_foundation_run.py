"""`make run` (bin/run.py) end to end: web, worker and beat start together with prefixed
output, the demo logins work over real HTTP, Ctrl-C stops everything.

Runs against the test database and Redis (DATABASE_URL / REDIS_URL set, so no embedded
servers); `.ci/smoke-run` covers the embedded ones.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests

from tests.conftest import worker_environment

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(log: Path, pattern: str, process: subprocess.Popen, timeout: float = 240) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        if re.search(pattern, text, re.MULTILINE):
            return text
        if process.poll() is not None:
            pytest.fail(f"bin/run.py exited {process.returncode}:\n{text[-4000:]}")
        time.sleep(0.3)
    pytest.fail(f"no {pattern!r} after {timeout}s:\n{log.read_text(errors='replace')[-4000:]}")


@pytest.mark.worker
def test_make_run_starts_web_worker_and_beat_and_ctrl_c_stops_them(
    transactional_db, django_db_serialized_rollback, tmp_path
):
    port = free_port()
    env = worker_environment(
        {
            "PORTFOLIO_PORT": str(port),
            "DEBUG": "1",  # plain HTTP on loopback, as `make run` sets up in .env
            "PORTFOLIO_ENV_FILE": "",  # leave the checkout's .env alone
            "CELERY_TASK_DEFAULT_QUEUE": f"test-run-{uuid.uuid4().hex[:8]}",
            "PYTHONUNBUFFERED": "1",
        }
    )
    log = tmp_path / "run.log"
    process = subprocess.Popen(
        [sys.executable, "bin/run.py"],
        cwd=ROOT,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, like a terminal's Ctrl-C
    )
    base = f"http://127.0.0.1:{port}"
    try:
        text = wait_for(log, r"Demo logins", process)
        assert f"Portfolio is running: {base}/" in text
        assert "load_demo: users 20 (20 new)" in text  # the empty database got the demo
        wait_for(log, r"^\S+ worker\s+\| .*celery@\S+ ready\.", process)
        wait_for(log, r"^\S+ beat\s+\| .*beat: Starting", process)
        assert re.search(r"^\S+ web\s+\| ", text, re.MULTILINE)

        health = requests.get(f"{base}/healthz", timeout=10)
        assert health.status_code == 200
        assert health.json()["status"] == "ok"
        session = requests.Session()
        session.get(f"{base}/accounts/login/", timeout=10)
        login = session.post(
            f"{base}/accounts/login/",
            data={
                "username": "manager1",
                "password": "portfolio-demo",
                "csrfmiddlewaretoken": session.cookies["csrftoken"],
            },
            headers={"Referer": f"{base}/accounts/login/"},
            allow_redirects=False,
            timeout=10,
        )
        assert login.status_code == 302, login.text[:500]
        assert session.get(f"{base}/", timeout=30).status_code == 200

        os.killpg(process.pid, signal.SIGINT)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    text = log.read_text(errors="replace")
    for name in ("web", "worker", "beat"):
        assert re.search(rf"{name} stopped", text), text[-3000:]
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{base}/healthz", timeout=5)
