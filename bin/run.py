"""`make run`: set Portfolio up and start web, a Celery worker and Celery beat together.

1. `.env` gets a generated SECRET_KEY (never printed) and DEBUG=1 when it has none.
2. PostgreSQL and Redis: DATABASE_URL / REDIS_URL when set, else embedded servers with
   their data under `.data/` (bin/services.py), kept for the next run.
3. `manage.py migrate`, then `manage.py load_demo --if-empty` (the demo data once).
4. web (`runserver 127.0.0.1:$PORTFOLIO_PORT`, default 8000), worker and beat, their
   output interleaved with a prefix per process; the URL and the demo logins are printed
   once the web answers. Ctrl-C stops the three and then the embedded servers.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import shlex
import signal
import subprocess  # nosec B404 # bin/ starts Portfolio's own processes
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import services  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
ENV_FILE = ROOT / ".env"
PY = sys.executable
DEMO_PASSWORD = "portfolio-demo"  # portfolio/management/commands/load_demo.py sets it  # nosec B105 # the documented demo password
DEMO_LOGINS = [("TAM", "tam1"), ("Manager", "manager1"), ("Admin", "admin")]


def say(message: str) -> None:
    print(f"make run: {message}", flush=True)


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of a .env file (comments and blank lines ignored)."""
    values: dict[str, str] = {}
    if not path.exists():
        return values
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        key = key.removeprefix("export ").strip()
        values[key] = value.strip().strip("'\"")
    return values


def ensure_env_file(path: Path = ENV_FILE) -> list[str]:
    """Add SECRET_KEY and DEBUG=1 to `.env` when it lacks them; return what was added."""
    present = read_env_file(path)
    added: list[str] = []
    lines: list[str] = []
    if "SECRET_KEY" not in present and not os.environ.get("SECRET_KEY"):
        lines.append(f"SECRET_KEY={secrets.token_urlsafe(50)}")
        added.append("SECRET_KEY")
    if "DEBUG" not in present and "DEBUG" not in os.environ:
        # The local set-up serves plain HTTP on 127.0.0.1; production leaves DEBUG off.
        lines.append("DEBUG=1")
        added.append("DEBUG")
    if lines:
        header = [] if path.exists() else ["# Written by `make run` for local use. Never commit."]
        text = path.read_text() if path.exists() else ""
        if text and not text.endswith("\n"):
            text += "\n"
        path.write_text(text + "\n".join(header + lines) + "\n")
        path.chmod(0o600)
    return added


def manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([PY, "manage.py", *args], cwd=ROOT, env=env, check=True)  # nosec B603 # a fixed argument list of our own commands


def wait_for_web(url: str, stop: threading.Event, timeout: float = 300) -> bool:
    deadline = time.monotonic() + timeout
    while not stop.is_set() and time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):  # nosec B310 # our own http://127.0.0.1 health URL
                return True
        except urllib.error.HTTPError:
            return True  # it answered (e.g. 503 while the broker warms up)
        except OSError:
            stop.wait(0.2)
    return False


def banner(url: str) -> str:
    logins = "\n".join(
        f"    {role:<8} {username:<9} / {DEMO_PASSWORD}" for role, username in DEMO_LOGINS
    )
    return (
        f"\n  Portfolio is running: {url}\n"
        f"  Demo logins (user / password):\n{logins}\n"
        f"  Health: {url}healthz    Admin: {url}admin/    Ctrl-C stops everything.\n"
    )


def processes(port: int) -> dict[str, list[str]]:
    celery = [PY, "-m", "celery", "-A", "config"]
    scheduler = "django_celery_beat.schedulers:DatabaseScheduler"
    return {
        "web": [PY, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        "worker": [*celery, "worker", "--loglevel", "INFO", "--concurrency", "2"]
        + ["--without-gossip", "--without-mingle"],
        "beat": [*celery, "beat", "--loglevel", "INFO", "--scheduler", scheduler],
    }


def run_together(env: dict[str, str], port: int) -> int:
    """Run web, worker and beat with honcho; Ctrl-C (or one of them dying) stops all."""
    from honcho.manager import Manager
    from honcho.printer import Message, Printer

    manager = Manager(Printer(sys.stdout, time_format="%H:%M:%S"))
    for name, cmd in processes(port).items():
        manager.add_process(name, shlex.join(cmd), env=env, cwd=str(ROOT))

    url = f"http://127.0.0.1:{port}/"
    stop = threading.Event()

    def announce() -> None:
        if wait_for_web(url + "healthz", stop):
            for line in banner(url).splitlines():
                manager.events.put(
                    Message(type="line", data=line + "\n", time=dt.datetime.now(),
                            name="system", colour=None)
                )  # fmt: skip

    threading.Thread(target=announce, daemon=True).start()
    try:
        manager.loop()
    finally:
        stop.set()
    # Ctrl-C (SIGINT) or a polite SIGTERM is how one stops `make run`: not a failure.
    return 0 if manager.returncode in (130, 143) else manager.returncode or 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    os.chdir(ROOT)
    # `kill` (SIGTERM) during set-up stops the embedded servers like Ctrl-C does.
    signal.signal(signal.SIGTERM, _interrupt)
    port = int(os.environ.get("PORTFOLIO_PORT", "8000"))
    if services.reachable("127.0.0.1", port, timeout=0.3):
        say(f"port {port} is already in use; set PORTFOLIO_PORT to another port.")
        return 1
    # Like config/settings.py: PORTFOLIO_ENV_FILE names the file; empty means none.
    env_file = os.environ.get("PORTFOLIO_ENV_FILE", str(ENV_FILE))
    if env_file:
        added = ensure_env_file(Path(env_file))
        if added:
            say(f"wrote {', '.join(added)} to {env_file}")
        # It may also hold DATABASE_URL / REDIS_URL; the environment wins over it.
        for key, value in read_env_file(Path(env_file)).items():
            os.environ.setdefault(key, value)

    found = services.ensure(prefer_local=False)
    try:
        say("; ".join(found.notes or ["PostgreSQL and Redis from DATABASE_URL / REDIS_URL"]))
        env = dict(os.environ)
        env.update(
            DATABASE_URL=found.database_url,
            REDIS_URL=found.redis_url,
            DJANGO_SETTINGS_MODULE="config.settings",
            PYTHONUNBUFFERED="1",
        )
        say("migrating the database")
        manage(env, "migrate", "--noinput", "-v", "0")
        manage(env, "load_demo", "--if-empty")
        say(f"starting web (127.0.0.1:{port}), worker and beat")
        return run_together(env, port)
    except subprocess.CalledProcessError as exc:
        say(f"{shlex.join(exc.cmd[1:])} failed (exit {exc.returncode})")
        return exc.returncode or 1
    except KeyboardInterrupt:
        return 130
    finally:
        # A second Ctrl-C must not leave the embedded servers running.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if found.notes and any("embedded" in note for note in found.notes):
            say("stopping the embedded servers (data kept in .data/)")
        found.stop()


if __name__ == "__main__":
    sys.exit(main())
