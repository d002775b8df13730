"""Benchmark: server time of the portfolio pages on a book of 100,000 accounts.

    .venv/bin/python bench/pages.py [--accounts 100000] [--per-tam 200] [--requests 40] [--keep]

Builds its own data set (500 TAMs with 200 accounts each, 50 managers with 10 TAMs each,
cadence calls, notes, opportunities, contacts, six months of account history and a stored
priority decision with its trace for every account) in a scratch database of its own
(test_<name>_bench_pages on the server of DATABASE_URL; `--keep` keeps it, and its data,
for the next run). Then requests each page in-process with Django's test Client and prints
the median and p95 server time and the number of SQL queries. Aim: p95 under 150 ms
(docs/performance.md). Not collected by pytest.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("SECRET_KEY", "bench-only-secret")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/5")
os.environ["TEST_DB_SUFFIX"] = "bench_pages"

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.contrib.auth.models import Group  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

REGIONS = ["US-WEST", "US-EAST", "EMEA", "APAC", "LATAM"]
SEGMENTS = ["enterprise", "enterprise", "commercial", "public_sector"]
COLOURS = ["green", "green", "green", "yellow", "amber", "red"]
TAMS_PER_TEAM = 10


def generate(n: int, per_tam: int, seed: int = 11) -> None:
    """The data set, set-based (bulk_create in batches; no save loops)."""
    from portfolio.models import Account, Activity, Contact, Opportunity, Team
    from prioritization.services import priorities_reevaluate

    rng = random.Random(seed)
    today = timezone.localdate()
    now = timezone.now()
    User = get_user_model()
    n_tams = max(1, n // per_tam)
    users = User.objects.bulk_create(
        [
            User(username=f"bench-tam{i}", first_name="Tam", last_name=f"{i:04d}")
            for i in range(n_tams)
        ]
        + [
            User(username=f"bench-mgr{i}", first_name="Manager", last_name=f"{i:03d}")
            for i in range((n_tams + TAMS_PER_TEAM - 1) // TAMS_PER_TEAM)
        ]
    )
    tams, managers = users[:n_tams], users[n_tams:]
    groups = {g.name: g for g in Group.objects.all()}
    through = User.groups.through
    through.objects.bulk_create(
        [through(user_id=u.pk, group_id=groups["TAM"].pk) for u in tams]
        + [through(user_id=u.pk, group_id=groups["Manager"].pk) for u in managers]
    )
    teams = Team.objects.bulk_create(
        [Team(name=f"Bench team {i}", manager=m) for i, m in enumerate(managers)]
    )
    Team.tams.through.objects.bulk_create(
        Team.tams.through(team_id=teams[i // TAMS_PER_TEAM].pk, user_id=t.pk)
        for i, t in enumerate(tams)
    )
    batch: list[Account] = []
    for i in range(n):
        started = today - dt.timedelta(days=rng.randint(20, 1500))
        batch.append(
            Account(
                salesforce_id=f"001P{i:014d}",
                name=f"Bench account {i:06d}",
                arr=Decimal(rng.randint(5_000, 900_000)),
                region_id=rng.choice(REGIONS),
                segment=rng.choice(SEGMENTS),
                tam=tams[i // per_tam] if i // per_tam < n_tams else None,
                renewal_date=today + dt.timedelta(days=rng.randint(-30, 400)),
                customer_since=started,
                onboarding_started=started,
                onboarding_completed=started + dt.timedelta(days=60),
                stages_adopted=rng.randint(0, 8),
                success_plan=rng.choice(["none", "objectives", "full"]),
                stage_adoption_hours_per_week=Decimal(rng.choice([0, 0, 0, 1, 3])),
                churn_risk=rng.random() < 0.08,
                health=rng.choice(COLOURS),
                org_change=rng.random() < 0.05,
                synced_at=now - dt.timedelta(minutes=rng.randint(1, 600)),
            )
        )
        if len(batch) == 5000:
            Account.objects.bulk_create(batch)
            batch = []
    if batch:
        Account.objects.bulk_create(batch)
    ids = list(Account.objects.values_list("pk", "salesforce_id"))
    activities = []
    for pk, _ in ids:
        for _ in range(rng.randint(1, 4)):
            kind = rng.choice(["cadence_call", "cadence_call", "call", "email", "note"])
            activities.append(
                Activity(
                    account_id=pk,
                    kind=kind,
                    occurred_at=now
                    - dt.timedelta(days=rng.randint(0, 200), hours=rng.randint(0, 23)),
                    subject=f"{kind} with the customer",
                )
            )
        if len(activities) >= 20_000:
            Activity.objects.bulk_create(activities)
            activities = []
    Activity.objects.bulk_create(activities)
    Opportunity.objects.bulk_create(
        [
            Opportunity(
                salesforce_id=f"006P{i:014d}",
                account_id=pk,
                account_salesforce_id=sfid,
                name="Up-tier",
                type=rng.choice(["Up-tier", "Renewal", "Add-on"]),
                close_date=today + dt.timedelta(days=rng.randint(-30, 400)),
                amount=Decimal(rng.randint(10_000, 500_000)),
            )
            for i, (pk, sfid) in enumerate(rng.sample(ids, n // 4))
        ],
        batch_size=10_000,
    )
    Contact.objects.bulk_create(
        [Contact(account_id=pk, name=f"Contact {i}") for i, (pk, _) in enumerate(ids[::2])],
        batch_size=10_000,
    )
    # Six months of history: spread the insert events, then change 15% of the colours.
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE portfolio_accountevent SET pgh_created_at = now() - "
            "(random() * interval '190 days') - interval '20 days'"
        )
    changed = rng.sample([pk for pk, _ in ids], n * 15 // 100)
    for start in range(0, len(changed), 5000):
        chunk = changed[start : start + 5000]
        Account.objects.filter(pk__in=chunk[: len(chunk) // 2]).update(health="amber")
        Account.objects.filter(pk__in=chunk[len(chunk) // 2 :]).update(health="green")
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE portfolio_accountevent SET pgh_created_at = now() - "
            "(random() * interval '19 days') WHERE pgh_label = 'update'"
        )
    result = priorities_reevaluate(cause="quarterly_review")
    print(f"  priorities: {result.evaluated:,} evaluated, {result.changed:,} decisions stored")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def measure(
    client: Client, urls: Callable[[int], str], requests: int, headers: dict | None = None
) -> dict:
    """Median and p95 wall time, median Python CPU time and SQL time (ms), and the
    query count, over `requests` GETs after 3 warm-up ones."""
    for i in range(3):
        client.get(urls(i), headers=headers)
    times, cpu, sql, queries = [], [], [], 0
    for i in range(requests):
        with CaptureQueriesContext(connection) as ctx:
            started, started_cpu = time.perf_counter(), time.process_time()
            response = client.get(urls(i), headers=headers)
            times.append((time.perf_counter() - started) * 1000)
            cpu.append((time.process_time() - started_cpu) * 1000)
        sql.append(sum(float(q["time"]) for q in ctx.captured_queries) * 1000)
        queries = max(queries, len(ctx.captured_queries))
        if response.status_code != 200:
            raise SystemExit(f"{urls(i)} answered {response.status_code}")
    times.sort()
    return {
        "median": statistics.median(times),
        "p95": times[min(len(times) - 1, int(round(0.95 * len(times))) - 1)],
        "cpu": statistics.median(cpu),
        "sql": statistics.median(sql),
        "queries": queries,
    }


def run(requests: int) -> list[tuple[str, float, float, int]]:
    from portfolio.models import Account, Team

    User = get_user_model()
    tam = User.objects.get(username="bench-tam0")
    team = Team.objects.select_related("manager").order_by("pk").first()
    admin = User.objects.filter(is_superuser=True).first() or User.objects.create_superuser(
        "bench-admin", "bench-admin@example.com", "x"
    )
    sfids = list(Account.objects.filter(tam=tam).values_list("salesforce_id", flat=True)[:50])
    tam_client, manager_client, admin_client = Client(), Client(), Client()
    tam_client.force_login(tam)
    manager_client.force_login(team.manager)
    admin_client.force_login(admin)
    pages = [
        ("dashboard (TAM, 200 accounts)", tam_client, lambda i: "/", None),
        (
            "dashboard table partial (htmx, filtered)",
            tam_client,
            lambda i: ["/?priority=2&sort=-arr", "/?health=at_risk", "/?overdue=on&page=2"][i % 3],
            {"HX-Request": "true"},
        ),
        (
            "dashboard of a TAM, seen by the manager",
            manager_client,
            lambda i: f"/tam/{tam.pk}/?sort=renewal",
            None,
        ),
        (
            "account page",
            tam_client,
            lambda i: f"/account/{sfids[i % len(sfids)]}/",
            None,
        ),
        ("team view (manager, 10 TAMs)", manager_client, lambda i: "/team/", None),
        ("team view (admin, every TAM)", admin_client, lambda i: "/team/", None),
    ]
    rows = []
    print(f"  {'page':<42} {'median':>8} {'p95':>8} {'py cpu':>8} {'sql':>8}  queries")
    for name, client, urls, headers in pages:
        m = measure(client, urls, requests, headers)
        rows.append((name, m))
        print(
            f"  {name:<42} {m['median']:6.1f}ms {m['p95']:6.1f}ms {m['cpu']:6.1f}ms "
            f"{m['sql']:6.1f}ms  {m['queries']:3d}"
        )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--per-tam", type=int, default=200)
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--keep", action="store_true", help="keep the database for the next run")
    args = parser.parse_args()

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    settings.SECURE_SSL_REDIRECT = False
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    from django.core.cache import cache

    creation = connection.creation
    original_name = connection.settings_dict["NAME"]
    creation.create_test_db(verbosity=0, autoclobber=not args.keep, keepdb=args.keep)
    try:
        from portfolio.models import Account

        if Account.objects.count() != args.accounts:
            if Account.objects.exists():  # a kept database with another data set: start over
                creation.destroy_test_db(original_name, verbosity=0, keepdb=False)
                creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
            started = time.monotonic()
            generate(args.accounts, args.per_tam)
            print(f"generated {args.accounts:,} accounts in {time.monotonic() - started:.0f} s")
        cache.clear()
        print(f"{args.requests} requests per page, in-process (Django test Client):")
        print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        rows = run(args.requests)
        print(f"load average after: {os.getloadavg()[0]:.1f}")
        worst = max(m["p95"] for _, m in rows[:-1])
        print(f"worst p95 (without the admin's all-TAM team view): {worst:.1f} ms (aim < 150 ms)")
        return 0 if worst < 150 else 1
    finally:
        if not args.keep:
            creation.destroy_test_db(original_name, verbosity=0)


if __name__ == "__main__":
    sys.exit(main())
