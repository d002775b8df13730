"""Benchmark: server time of the portfolio pages on a book of 100,000 accounts.

    .venv/bin/python bench/pages.py [--accounts 100000] [--per-tam 200] [--requests 40]
                                    [--db-prefix test_postgres_] [--keep]

Builds its own data set (500 TAMs with 200 accounts each, 50 managers with 10 TAMs each,
cadence calls, notes, opportunities, contacts, six months of account history and a stored
priority decision with its trace for every account), set-based in SQL (bench/_common.py),
in a scratch database of its own (<prefix>bench_pages on the server of DATABASE_URL, never
serialized; `--keep` keeps it, and its data, for the next run). Then requests each page
in-process with Django's test Client and prints the median and p95 server time and the
number of SQL queries. Aim (issue 12.4): p95 under 100 ms and at most 12 queries a
page (docs/performance.md). Not collected by pytest.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("SECRET_KEY", "bench-only-secret")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/5")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.contrib.auth.models import Group  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from bench._common import (  # noqa: E402
    add_database_arguments,
    analyze,
    insert_select,
    load,
    pick,
    say,
    scratch_database,
)

REGIONS = ["US-WEST", "US-EAST", "EMEA", "APAC", "LATAM"]
SEGMENTS = ["enterprise", "enterprise", "commercial", "public_sector"]
COLOURS = ["green", "green", "green", "yellow", "amber", "red"]
TAMS_PER_TEAM = 10


def generate(n: int, per_tam: int, seed: float = 0.11) -> None:
    """The data set, set-based: users and teams with bulk_create (a few thousand rows), the
    rest in SQL (`INSERT ... SELECT` over generate_series, bench/_common.py), then the real
    quarterly review for the decisions and their traces."""
    from portfolio.models import Account, Activity, Contact, Opportunity, Team
    from prioritization.services import priorities_reevaluate

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
    say(f"  {len(users):,} users, {len(teams):,} teams")
    with connection.cursor() as cursor:
        cursor.execute("SELECT setseed(%s)", [seed])
        # The TAMs in order, so account i belongs to TAM (i - 1) // per_tam.
        cursor.execute(
            "CREATE TEMPORARY TABLE bench_tam AS SELECT id, row_number() OVER (ORDER BY id) - 1 "
            "AS k FROM auth_user WHERE username LIKE 'bench-tam%%'"
        )
    insert_select(
        Account,
        rows=n,
        label="accounts",
        source=(
            "(SELECT i, t.id AS tam, CURRENT_DATE - 20 - floor(random() * 1480)::int AS started"
            " FROM generate_series({lo}, {hi}) AS i"
            f" LEFT JOIN bench_tam t ON t.k = (i - 1) / {per_tam}) g"
        ),
        exprs={
            "salesforce_id": "'001P' || lpad(g.i::text, 14, '0')",
            "name": "'Bench account ' || lpad(g.i::text, 7, '0')",
            "arr": "5000 + floor(random() * 895000)",
            "region_id": pick(REGIONS),
            "segment": pick(SEGMENTS),
            "tam_id": "g.tam",
            "renewal_date": "CURRENT_DATE - 30 + floor(random() * 430)::int",
            "customer_since": "g.started",
            "onboarding_started": "g.started",
            "onboarding_completed": "g.started + 60",
            "stages_adopted": "floor(random() * 9)::int",
            "success_plan": pick(["none", "objectives", "full"]),
            "stage_adoption_hours_per_week": pick([0, 0, 0, 1, 3]),
            "churn_risk": "random() < 0.08",
            "health": pick(COLOURS),
            "org_change": "random() < 0.05",
            "synced_at": "now() - floor(1 + random() * 600) * interval '1 minute'",
        },
    )
    # 1-4 activities per account, half of them cadence calls.
    insert_select(
        Activity,
        rows=n,
        label="accounts' activities",
        source=(
            "(SELECT a.id AS account_id, "
            + pick(["cadence_call", "cadence_call", "call", "email", "note"])
            + " AS kind FROM portfolio_account a"
            " CROSS JOIN LATERAL generate_series(1, 1 + (a.id * 7 + 3) %% 4) AS k"
            " WHERE a.id BETWEEN {lo} AND {hi}) g"
        ),
        exprs={
            "account_id": "g.account_id",
            "kind": "g.kind",
            "occurred_at": (
                "now() - floor(random() * 200) * interval '1 day'"
                " - floor(random() * 24) * interval '1 hour'"
            ),
            "subject": "g.kind || ' with the customer'",
        },
    )
    insert_select(
        Opportunity,
        rows=n,
        label="accounts' opportunities (1 in 4)",
        source=(
            "(SELECT id AS account_id, salesforce_id AS account_sfid, id AS i"
            " FROM portfolio_account WHERE random() < 0.25 AND id BETWEEN {lo} AND {hi}) g"
        ),
        exprs={
            "salesforce_id": "'006P' || lpad(g.i::text, 14, '0')",
            "account_id": "g.account_id",
            "account_salesforce_id": "g.account_sfid",
            "name": "'Up-tier'",
            "type": pick(["Up-tier", "Renewal", "Add-on"]),
            "close_date": "CURRENT_DATE - 30 + floor(random() * 430)::int",
            "amount": "10000 + floor(random() * 490000)",
        },
    )
    insert_select(
        Contact,
        rows=n,
        label="accounts' contacts (1 in 2)",
        source=(
            "(SELECT id AS account_id FROM portfolio_account"
            " WHERE id %% 2 = 0 AND id BETWEEN {lo} AND {hi}) g"
        ),
        exprs={"account_id": "g.account_id", "name": "'Contact ' || g.account_id"},
    )
    # Six months of history: spread the insert events, then change 15% of the colours.
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE portfolio_accountevent SET pgh_created_at = now() - "
            "(random() * interval '190 days') - interval '20 days'"
        )
        for lo in range(1, n + 1, 100_000):
            cursor.execute(
                "UPDATE portfolio_account SET health = CASE WHEN random() < 0.5 THEN 'amber' "
                "ELSE 'green' END WHERE id BETWEEN %s AND %s AND random() < 0.15",
                [lo, lo + 99_999],
            )
        cursor.execute(
            "UPDATE portfolio_accountevent SET pgh_created_at = now() - "
            "(random() * interval '19 days') WHERE pgh_label = 'update'"
        )
    say("  history spread over six months; quarterly review for the decisions")
    result = priorities_reevaluate(cause="quarterly_review")
    say(f"  priorities: {result.evaluated:,} evaluated, {result.changed:,} decisions stored")
    triage_issues_generate()
    say("  open triage issues for 2% of the accounts (the board's cards)")
    analyze()


def triage_issues_generate(share: float = 0.02) -> None:
    """Open triage issues (the board's cards) for `share` of the accounts, amber and red
    ones first, in one statement."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO triage_triageissue
                (account_id, title, status, colour, is_new, churn_class, region,
                 salesforce_url, success_plan_url, renewal_date, health_reason, milestone,
                 opened_at, updated_at, gitlab_web_url, needs_push)
            SELECT a.id, a.name || ' at risk', 'open', a.health, random() < 0.3,
                   CASE WHEN a.health = 'red' THEN 'L1' ELSE '' END, a.region_id, '', '',
                   a.renewal_date, 'Low adoption', '', now() - random() * interval '60 days',
                   now(), '', false
            FROM portfolio_account a
            WHERE a.health IN ('amber', 'red') AND random() < %s
            """,
            [share * 3],
        )
        cursor.execute("ANALYZE triage_triageissue")


# Everything generate() writes (users, teams and what hangs off them cascade).
_TRUNCATE_ALL = (
    "TRUNCATE portfolio_account, portfolio_accountevent, pghistory_context, "
    "prioritization_priorityreview, portfolio_team, auth_user CASCADE"
)


def measure(
    client: Client,
    urls: Callable[[int], str],
    requests: int,
    headers: dict | None = None,
    *,
    cold: bool = False,
) -> dict:
    """Median and p95 wall time, median Python CPU time and SQL time (ms), and the
    query count, over `requests` GETs after 3 warm-up ones. `cold`: each GET right after a
    write elsewhere (the data version bumped: portfolio/datacache.py), so nothing the
    pages cache under it is there, as on the first view after any change."""
    from portfolio import datacache

    for i in range(3):
        client.get(urls(i), headers=headers)
    times, cpu, sql, queries = [], [], [], 0
    for i in range(requests):
        if cold:
            datacache.data_version_bump()
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
        "p95": times[min(len(times) - 1, round(0.95 * len(times)) - 1)],
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
    htmx = {"HX-Request": "true"}
    tam_client.force_login(tam)
    manager_client.force_login(team.manager)
    admin_client.force_login(admin)
    pages = [
        ("dashboard (TAM, 200 accounts)", tam_client, lambda i: "/", None),
        (
            "dashboard table partial (htmx, filtered)",
            tam_client,
            lambda i: ["/?priority=2&sort=-arr", "/?health=at_risk", "/?overdue=on&page=2"][i % 3],
            htmx,
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
        (
            "engagement panel (htmx, loaded by the account page)",
            tam_client,
            lambda i: f"/engagement/account/{sfids[i % len(sfids)]}/",
            htmx,
        ),
        (
            "usage panel (htmx, loaded by the account page)",
            tam_client,
            lambda i: f"/usage/account/{sfids[i % len(sfids)]}/",
            htmx,
        ),
        ("team view (manager, 10 TAMs)", manager_client, lambda i: "/team/", None),
        ("triage board (manager)", manager_client, lambda i: "/triage/", None),
        ("weekly agenda (manager)", manager_client, lambda i: "/triage/agenda/", None),
        ("team view (admin, every TAM)", admin_client, lambda i: "/team/", None),
    ]
    rows = []
    print(
        f"  {'page':<52} {'median':>8} {'p95':>8} {'py cpu':>8} {'sql':>8}  queries"
        "   | cold: p95, queries"
    )
    for name, client, urls, headers in pages:
        m = measure(client, urls, requests, headers)
        c = measure(client, urls, max(10, requests // 4), headers, cold=True)
        m["cold_p95"], m["cold_queries"] = c["p95"], c["queries"]
        rows.append((name, m))
        print(
            f"  {name:<52} {m['median']:6.1f}ms {m['p95']:6.1f}ms {m['cpu']:6.1f}ms "
            f"{m['sql']:6.1f}ms  {m['queries']:3d}      | {c['p95']:6.1f}ms {c['queries']:3d}"
        )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--per-tam", type=int, default=200)
    parser.add_argument("--requests", type=int, default=40)
    add_database_arguments(parser, "bench_pages")
    args = parser.parse_args()

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    settings.SECURE_SSL_REDIRECT = False
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    from django.core.cache import cache

    with scratch_database("bench_pages", prefix=args.db_prefix, keep=args.keep):
        from portfolio.models import Account

        if Account.objects.count() != args.accounts:
            if Account.objects.exists():  # a kept database with another data set: start over
                with connection.cursor() as cursor:
                    cursor.execute(_TRUNCATE_ALL)
            started = time.monotonic()
            say(f"generating {args.accounts:,} accounts")
            generate(args.accounts, args.per_tam)
            say(f"generated {args.accounts:,} accounts in {time.monotonic() - started:.0f} s")
        cache.clear()
        print(f"{args.requests} requests per page, in-process (Django test Client):")
        print(f"load average before: {load()} on {os.cpu_count()} CPUs")
        rows = run(args.requests)
        print(f"load average after: {load()}")
        # The admin's company-wide team view (last) is a rare screen, not in the aim.
        worst = max(m["p95"] for _, m in rows[:-1])
        most = max(m["queries"] for _, m in rows[:-1])
        print(
            f"worst p95 (without the admin's all-TAM team view): {worst:.1f} ms (aim < 100 ms); "
            f"most queries: {most} (aim <= 12); after a write (cold): worst p95 "
            f"{max(m['cold_p95'] for _, m in rows[:-1]):.1f} ms, most queries "
            f"{max(m['cold_queries'] for _, m in rows[:-1])}"
        )
        return 0 if worst < 100 and most <= 12 else 1


if __name__ == "__main__":
    sys.exit(main())
