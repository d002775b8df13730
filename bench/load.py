"""Benchmark: many signed-in users at once against gunicorn over loopback (issue 12.5).

    .venv/bin/python bench/load.py [--accounts 100000] [--users 200] [--think 5]
        [--duration 120] [--max-requests 20000] [--closed-loop 50] [--workers N]
        [--worker-class sync|gthread] [--threads N] [--timeout S] [--database bench_load]

Data: a scratch database named `<--database>_<accounts>` on the server of DATABASE_URL,
built once by bench/pages.py's builder (TAMs with 200 accounts each, managers with teams of
10, cadence calls, opportunities, contacts, history, a priority decision per account) plus
open triage issues for 2% of the accounts, and kept: the next run with the same name and
size reuses it (after `migrate`); `--rebuild` starts over.

Server: gunicorn started from this checkout exactly as docker-compose.yml's `web` service
runs it (`config.wsgi`, DEBUG off, gunicorn.conf.py read from the checkout: worker class,
processes, threads, timeout, unless given here), bound to 127.0.0.1 on a free port, with
collected static files; only plain HTTP differs (no proxy in front, so the HTTPS redirect
and secure cookies are off).

Load: `--users` Django users (TAMs and managers of the data set, 1 manager in 10),
each signed in with a session cookie of their own, each a thread running the realistic
mix below with an exponential think time of mean `--think` seconds between requests,
for `--duration` seconds or `--max-requests` requests, whichever comes first. Each page is
followed, as in a browser, by the fragments it loads itself with htmx
(`hx-trigger="load"`: the account page's engagement and usage panels, every full page's
notifications bell), each counted as a request of its own ("lazy <app>"). Prints
p50/p95/p99 latency (overall and per page), errors (any status but 200, or no answer
within 30 s), requests per second, the CPU seconds spent by the gunicorn
workers per request, and the load average before and after.

`--closed-loop N` runs N users with no think time instead (each sends its next request as
soon as the last one answered): the saturation throughput.

Aim (issue 12.5): 200 users, think time 5 s: p95 < 300 ms and 0 errors. Exit status 1 when
an open-loop run misses it. Not collected by pytest.
"""

from __future__ import annotations

import argparse
import html
import os
import random
import re
import runpy
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("SECRET_KEY", "bench-only-secret")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/7")
os.environ.setdefault("PORTFOLIO_ENV_FILE", "")
# The maintenance database: the scratch database is created (and named) from it.
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")

import logging  # noqa: E402

import django  # noqa: E402

django.setup()
logging.getLogger("axes").setLevel(logging.WARNING)  # one line per signed-in bench user

import requests  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, connections  # noqa: E402

# The mix: (page, weight, who). Weights are a morning's use: TAMs mostly on their dashboard,
# its filtered table and account pages; managers on the team view, the agenda, the board.
TAM_MIX = [
    ("dashboard", 25),
    ("table", 30),
    ("account", 30),
    ("board", 15),
]
MANAGER_MIX = [
    ("dashboard", 20),
    ("tam_dashboard", 15),
    ("table", 15),
    ("account", 15),
    ("team", 15),
    ("board", 10),
    ("agenda", 10),
]
TABLE_QUERIES = [
    "?priority=2&sort=-arr",
    "?health=at_risk",
    "?overdue=on&page=2",
    "?q=account+00&sort=renewal",
    "?region=EMEA&sort=-arr&page=3",
]


# --- The data set ------------------------------------------------------------------------


def _server_url(database: str) -> str:
    parts = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(parts._replace(path=f"/{database}"))


def database_prepare(name: str, accounts: int, per_tam: int, rebuild: bool) -> None:
    """Point Django at the scratch database `name`; create, migrate and fill it unless a
    kept one of the same size is there (then only `migrate`)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        exists = cursor.fetchone() is not None
        if exists and rebuild:
            cursor.execute(f'DROP DATABASE "{name}" WITH (FORCE)')  # nosec B608 # our own name
            exists = False
        if not exists:
            cursor.execute(f'CREATE DATABASE "{name}"')  # nosec B608 # our own name
    connection.close()
    settings.DATABASES["default"]["NAME"] = name
    connections["default"].settings_dict["NAME"] = name
    started = time.monotonic()
    call_command("migrate", verbosity=0)
    print(f"migrated in {time.monotonic() - started:.0f} s", flush=True)
    from portfolio.models import Account

    if exists and Account.objects.count() == accounts:
        print(f"reusing {name} ({accounts:,} accounts)", flush=True)
        return
    if exists:
        raise SystemExit(f"{name} holds another data set: run with --rebuild")
    import pages  # bench/pages.py: the pages bench's builder

    started = time.monotonic()
    pages.generate(accounts, per_tam)  # with the open triage issues
    print(f"generated {accounts:,} accounts in {time.monotonic() - started:.0f} s", flush=True)


# --- Users and their sessions ------------------------------------------------------------


@dataclass
class Person:
    username: str
    role: str
    cookie: str
    account_ids: list[str]
    tam_ids: list[int] = field(default_factory=list)


def people_sign_in(n: int) -> list[Person]:
    """`n` users of the data set (one manager in ten), each with a real session made by
    Django's login (the test client's force_login), so the server sees ordinary cookies."""
    from django.test import Client

    from portfolio.models import Account, Team

    User = get_user_model()
    n_managers = max(1, n // 10)
    managers = list(User.objects.filter(username__startswith="bench-mgr").order_by("pk"))
    tams = list(User.objects.filter(username__startswith="bench-tam").order_by("pk"))
    chosen = [("manager", u) for u in managers[:n_managers]]
    chosen += [("tam", u) for u in tams[: n - len(chosen)]]
    people = []
    for role, user in chosen:
        client = Client()
        client.force_login(user)
        if role == "tam":
            tam_ids = [user.pk]
        else:
            tam_ids = list(
                Team.tams.through.objects.filter(team__manager=user).values_list(
                    "user_id", flat=True
                )
            )
        account_ids = list(
            Account.objects.filter(tam_id__in=tam_ids)
            .order_by("?")
            .values_list("salesforce_id", flat=True)[:50]
        )
        people.append(
            Person(
                username=user.username,
                role=role,
                cookie=client.cookies[settings.SESSION_COOKIE_NAME].value,
                account_ids=account_ids,
                tam_ids=tam_ids,
            )
        )
    return people


# --- gunicorn ------------------------------------------------------------------------------


GUNICORN_LOG = Path(tempfile.gettempdir()) / "portfolio-bench-load-gunicorn.log"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def gunicorn_start(database: str, args) -> tuple[subprocess.Popen, str]:
    """gunicorn as docker-compose.yml's web service runs it, over loopback."""
    env = {
        **os.environ,
        "DEBUG": "0",
        "PORTFOLIO_ENV_FILE": "",
        "DATABASE_URL": _server_url(database),
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "0",
        "SESSION_COOKIE_SECURE": "0",
        "CSRF_COOKIE_SECURE": "0",
        "LOG_LEVEL": "WARNING",
    }
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
    )
    port = _free_port()
    # docker-compose.yml's command; gunicorn.conf.py (read from the working directory)
    # gives the worker class, processes, threads and timeout unless overridden here.
    command = [
        str(Path(sys.executable).parent / "gunicorn"),
        "config.wsgi",
        "--bind",
        f"127.0.0.1:{port}",
        "--access-logfile",
        "-",
    ]
    for flag, value in [
        ("--workers", args.workers),
        ("--worker-class", args.worker_class),
        ("--threads", args.threads),
        ("--timeout", args.timeout),
    ]:
        if value is not None:
            command += [flag, str(value)]
    log = open(GUNICORN_LOG, "w")  # noqa: SIM115 # closed with the process
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{base}/healthz", timeout=2).status_code in (200, 503):
                return process, base
        except requests.RequestException:
            time.sleep(0.3)
    process.terminate()
    raise SystemExit(f"gunicorn did not answer within 60 s: see {GUNICORN_LOG}")


def _data_version() -> int | None:
    """The page caches' data version (portfolio/datacache.py), if this checkout has it."""
    try:
        from portfolio.datacache import data_version
    except ImportError:
        return None
    return data_version()


def gunicorn_settings(args) -> dict:
    """The settings gunicorn runs with: gunicorn.conf.py's, then the flags given."""
    conf = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    given = {
        "workers": args.workers,
        "worker_class": args.worker_class,
        "threads": args.threads,
        "timeout": args.timeout,
    }
    return {key: given[key] if given[key] is not None else conf[key] for key in given}


def _cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) of a process and its children, from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pids = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(c) for c in children]
    except OSError:
        pass
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError):
            pass
    return total


# --- The load ------------------------------------------------------------------------------


@dataclass
class Result:
    page: str
    status: int
    ms: float


def _url(person: Person, page: str, rng: random.Random) -> tuple[str, dict]:
    if page == "dashboard":
        return "/", {}
    if page == "table":
        return "/" + rng.choice(TABLE_QUERIES), {"HX-Request": "true"}
    if page == "tam_dashboard":
        return f"/tam/{rng.choice(person.tam_ids)}/?sort=renewal", {}
    if page == "account":
        return f"/account/{rng.choice(person.account_ids)}/", {}
    if page == "team":
        return "/team/", {}
    if page == "board":
        return "/triage/", {}
    if page == "agenda":
        return "/triage/agenda/", {}
    raise ValueError(page)


class Load:
    def __init__(
        self,
        base: str,
        people: list[Person],
        *,
        think: float,
        duration: float,
        max_requests: int,
        seed: int = 5,
    ) -> None:
        self.base, self.people, self.think = base, people, think
        self.duration, self.max_requests = duration, max_requests
        self.results: list[Result] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.seed = seed

    def _get(
        self, session: requests.Session, page: str, url: str, headers: dict, *, lazy: bool = True
    ) -> None:
        """GET `url`, then, as htmx in a browser would, every fragment the answer loads
        itself (`hx-get` with `hx-trigger="load..."`: the engagement and usage panels of the
        account page, the notifications bell of every full page), each a request counted
        under its own name."""
        started = time.perf_counter()
        try:
            response = session.get(
                self.base + url, headers=headers, timeout=30, allow_redirects=False
            )
            status, body = response.status_code, response.text
        except requests.RequestException:
            status, body = 0, ""
        result = Result(page, status, (time.perf_counter() - started) * 1000)
        with self.lock:
            self.results.append(result)
            if len(self.results) >= self.max_requests:
                self.stop.set()
        if status == 200 and lazy:
            for fragment in _loaded_fragments(body):
                name = "lazy " + fragment.split("?")[0].strip("/").split("/")[0]
                self._get(session, name, fragment, {"HX-Request": "true"}, lazy=False)

    def _user(self, index: int, person: Person) -> None:
        rng = random.Random(self.seed * 1000 + index)
        mix = TAM_MIX if person.role == "tam" else MANAGER_MIX
        pages, weights = [p for p, _ in mix], [w for _, w in mix]
        session = requests.Session()
        session.cookies.set(settings.SESSION_COOKIE_NAME, person.cookie)
        # Users arrive spread over one think time, not all at once.
        if self.think and self.stop.wait(rng.uniform(0, self.think)):
            return
        while not self.stop.is_set():
            page = rng.choices(pages, weights)[0]
            url, headers = _url(person, page, rng)
            self._get(session, page, url, headers)
            if self.think and self.stop.wait(rng.expovariate(1 / self.think)):
                return

    def run(self) -> float:
        threads = [
            threading.Thread(target=self._user, args=(i, p), daemon=True)
            for i, p in enumerate(self.people)
        ]
        started = time.perf_counter()
        for t in threads:
            t.start()
        self.stop.wait(self.duration)
        self.stop.set()
        for t in threads:
            t.join(timeout=35)
        return time.perf_counter() - started


_TAG = re.compile(r"<[^>]*\bhx-trigger=\"load\b[^>]*>")
_HX_GET = re.compile(r"\bhx-get=\"([^\"]+)\"")


def _loaded_fragments(body: str) -> list[str]:
    """The URLs of the elements that load themselves with htmx as the page shows."""
    urls = []
    for tag in _TAG.findall(body):
        found = _HX_GET.search(tag)
        if found:
            urls.append(html.unescape(found.group(1)))
    return urls


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, max(0, round(q * len(values)) - 1))]


def report(results: list[Result], seconds: float, server_cpu: float) -> dict:
    ok = [r for r in results if r.status == 200]
    errors = len(results) - len(ok)
    statuses: dict[int, int] = {}
    for r in results:
        if r.status != 200:
            statuses[r.status] = statuses.get(r.status, 0) + 1
    all_ms = [r.ms for r in results] or [0.0]
    print(f"  {'page':<20} {'count':>6} {'p50':>8} {'p95':>8} {'p99':>8}")
    for page in sorted({r.page for r in results}):
        ms = [r.ms for r in results if r.page == page]
        print(
            f"  {page:<20} {len(ms):6d} {statistics.median(ms):6.0f}ms "
            f"{_pct(ms, 0.95):6.0f}ms {_pct(ms, 0.99):6.0f}ms"
        )
    summary = {
        "requests": len(results),
        "errors": errors,
        "p50": statistics.median(all_ms),
        "p95": _pct(all_ms, 0.95),
        "p99": _pct(all_ms, 0.99),
        "rps": len(results) / seconds if seconds else 0.0,
        "cpu_ms": 1000 * server_cpu / len(results) if results else 0.0,
    }
    print(
        f"  {'all':<20} {len(results):6d} {summary['p50']:6.0f}ms {summary['p95']:6.0f}ms "
        f"{summary['p99']:6.0f}ms"
    )
    print(
        f"  {summary['rps']:.1f} req/s over {seconds:.0f} s; errors {errors}"
        + (f" {statuses}" if statuses else "")
        + f"; gunicorn CPU {summary['cpu_ms']:.0f} ms per request"
    )
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--per-tam", type=int, default=200)
    parser.add_argument("--database", default="bench_load", help="name prefix of the scratch db")
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--think", type=float, default=5.0, help="mean think time, seconds")
    parser.add_argument("--duration", type=float, default=120.0, help="seconds of load")
    parser.add_argument("--max-requests", type=int, default=20_000)
    parser.add_argument(
        "--closed-loop",
        type=int,
        default=0,
        metavar="N",
        help="N users without think time (saturation throughput) instead",
    )
    # Default: gunicorn.conf.py's values, as docker-compose.yml runs it.
    parser.add_argument("--workers", type=int)
    parser.add_argument("--worker-class")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--timeout", type=int)
    args = parser.parse_args()

    name = f"{args.database}_{args.accounts}"
    database_prepare(name, args.accounts, args.per_tam, args.rebuild)
    users = args.closed_loop or args.users
    people = people_sign_in(users)
    connection.close()
    from django.core.cache import cache

    cache.clear()
    process, base = gunicorn_start(name, args)
    try:
        think = 0.0 if args.closed_loop else args.think
        conf = gunicorn_settings(args)
        print(
            f"{len(people)} users ({sum(p.role == 'manager' for p in people)} managers), "
            f"think time {think:g} s, gunicorn -w {conf['workers']} -k {conf['worker_class']} "
            f"--threads {conf['threads']} --timeout {conf['timeout']}, "
            f"{args.accounts:,} accounts",
            flush=True,
        )
        # Warm-up: every worker imports, connects and fills its caches once.
        warm = Load(base, people[:20], think=0, duration=10, max_requests=200)
        warm.run()
        print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs", flush=True)
        cpu_before = _cpu_seconds(process.pid)
        version_before = _data_version()
        load = Load(
            base, people, think=think, duration=args.duration, max_requests=args.max_requests
        )
        seconds = load.run()
        cpu = _cpu_seconds(process.pid) - cpu_before
        print(f"load average after: {os.getloadavg()[0]:.2f}")
        if version_before is not None:
            # Reads only: a bump means a GET wrote something and emptied the page caches.
            print(f"data version bumps during the load: {_data_version() - version_before}")
        summary = report(load.results, seconds, cpu)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
    if args.closed_loop:
        return 0 if summary["errors"] == 0 else 1
    met = summary["p95"] < 300 and summary["errors"] == 0
    print(f"aim (p95 < 300 ms, 0 errors): {'met' if met else 'NOT met'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
