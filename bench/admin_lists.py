"""Benchmark: Django admin's change lists, a decision's change page, and the bounded
Customer ER agenda and board, at a million accounts (issue 12, points 1 and 6).

    .venv/bin/python bench/admin_lists.py [--accounts 1000000] [--decisions-per-account 2]
                                          [--requests 5] [--explain] [--db-prefix P] [--keep]

Builds, set-based in SQL (bench/_common.py), in a scratch database of its own
(<prefix>bench_admin): the accounts (2,000 TAMs, 5 regions, random health), two priority
decisions per account with a trace of the usual shape, a current health assessment per
account, an open triage issue for one account in ten. Then, signed in as a superuser with
Django's test Client, requests each page `--requests` times and prints the median server
time, the bytes and the number of SQL queries; `--explain` prints EXPLAIN (ANALYZE,
BUFFERS) of the queries of one request of each page. Not collected by pytest.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
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
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.urls import reverse  # noqa: E402

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
TRACE = (
    '[{"rule": "uptier_opportunity", "question": "Open up-tier opportunity closing in the '
    'next 6 months?", "answer": false, "evidence": "none open"}, {"rule": "churn_risk", '
    '"question": "At risk of contraction or churn?", "answer": false, "evidence": ""}, '
    '{"rule": "default_p2", "question": "Otherwise", "answer": true, "evidence": ""}]'
)


def generate(n: int, per_account: int) -> None:
    from portfolio.models import Account
    from prioritization.models import PriorityDecision
    from triage.models import HealthAssessment, TriageIssue

    User = get_user_model()
    User.objects.bulk_create(
        User(username=f"bench-tam{i}", first_name="Tam", last_name=f"{i:04d}") for i in range(2000)
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMPORARY TABLE bench_tam AS SELECT id, row_number() OVER (ORDER BY id) - 1 "
            "AS k FROM auth_user WHERE username LIKE 'bench-tam%%'"
        )
    insert_select(
        Account,
        rows=n,
        label="accounts",
        source=(
            "(SELECT i, t.id AS tam FROM generate_series({lo}, {hi}) AS i"
            " LEFT JOIN bench_tam t ON t.k = i %% 2000) g"
        ),
        exprs={
            "salesforce_id": "'001A' || lpad(g.i::text, 14, '0')",
            "name": "'Account ' || md5(g.i::text)",
            "arr": "5000 + floor(random() * 895000)",
            "region_id": pick(REGIONS),
            "segment": pick(["enterprise", "commercial", "public_sector"]),
            "tam_id": "g.tam",
            "renewal_date": "CURRENT_DATE - 30 + floor(random() * 430)::int",
            "health": pick(["green", "green", "yellow", "amber", "red"]),
            "priority": pick([1, 2, 2, 2]),
        },
    )
    lo = Account.objects.order_by("pk").values_list("pk", flat=True)[:1][0]
    hi = Account.objects.order_by("-pk").values_list("pk", flat=True)[:1][0]
    insert_select(
        PriorityDecision,
        rows=n * per_account,
        label="decisions",
        exprs={
            "account_id": f"{lo} + (g.i - 1) %% {hi - lo + 1}",
            "priority": "1 + (g.i %% 2)",
            "model": "'us_enterprise'",
            "decided_by": "'default_p2'",
            "trace": f"'{TRACE}'::jsonb",
            "cause": pick(["quarterly_review", "quarterly_review", "sync", "manual"]),
            "decided_at": "now() - (g.i %% 400) * interval '1 day'",
        },
    )
    insert_select(
        HealthAssessment,
        rows=n,
        label="health assessments",
        exprs={
            "account_id": f"{lo} + g.i - 1",
            "created_at": "now() - (g.i %% 90) * interval '1 day'",
            "source": "'automatic'",
            "suggested_colour": pick(["green", "yellow", "amber", "red"]),
            "colour": pick(["green", "yellow", "amber", "red"]),
            "chosen_colour": "''",
            "previous_colour": "''",
        },
    )
    insert_select(
        TriageIssue,
        rows=n // 10,
        label="open triage issues",
        exprs={
            "account_id": f"{lo} + (g.i - 1) * 10",
            "title": "'Issue ' || g.i",
            "colour": pick(["red", "amber", "yellow", "green"]),
            "region": pick(REGIONS),
            "opened_at": "now() - (g.i %% 60) * interval '1 day'",
            "is_new": "g.i %% 3 = 0",
            "churn_class": "''",
        },
    )


def pages(decision_id: int, account_pk: int, account_sf: str) -> list[tuple[str, str, dict]]:
    def cl(app: str, model: str) -> str:
        return reverse(f"admin:{app}_{model}_changelist")

    return [
        ("Account list", cl("portfolio", "account"), {}),
        ("Account list, page 50", cl("portfolio", "account"), {"p": "50"}),
        ("Account list sorted by ARR", cl("portfolio", "account"), {"o": "5"}),
        ("Account list filtered (health=red)", cl("portfolio", "account"), {"health": "red"}),
        ("Account search by name", cl("portfolio", "account"), {"q": "a3f9"}),
        ("Account search by Salesforce id", cl("portfolio", "account"), {"q": account_sf}),
        ("Account change page", reverse("admin:portfolio_account_change", args=[account_pk]), {}),
        ("PriorityDecision list", cl("prioritization", "prioritydecision"), {}),
        (
            "PriorityDecision filtered (cause=manual)",
            cl("prioritization", "prioritydecision"),
            {"cause__exact": "manual"},
        ),
        (
            "PriorityDecision search by Salesforce id",
            cl("prioritization", "prioritydecision"),
            {"q": account_sf},
        ),
        (
            "PriorityDecision change page",
            reverse("admin:prioritization_prioritydecision_change", args=[decision_id]),
            {},
        ),
        ("HealthAssessment list", cl("triage", "healthassessment"), {}),
        ("TriageIssue list", cl("triage", "triageissue"), {}),
        ("Customer ER agenda (admin)", reverse("triage:agenda"), {}),
        ("Colours board (admin)", reverse("triage:board_colours"), {}),
    ]


def explain(sqls: list[str]) -> None:
    with connection.cursor() as cursor:
        for sql in sqls:
            if not sql.lstrip().upper().startswith("SELECT") or "django_session" in sql:
                continue
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)  # nosec B608 # bench: the page's own SQL
            plan = [row[0] for row in cursor.fetchall()]
            print("    " + sql[:200])
            print("\n".join("      " + line for line in plan[:14]))


def measure(requests: int, show_plans: bool) -> None:
    from portfolio.models import Account
    from prioritization.models import PriorityDecision

    User = get_user_model()
    admin, _ = User.objects.get_or_create(
        username="bench-admin", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client()
    client.force_login(admin)
    decision = PriorityDecision.objects.order_by("-pk").first()
    account = Account.objects.order_by("pk")[500]
    rows = []
    for title, url, params in pages(decision.pk, account.pk, account.salesforce_id):
        client.get(url, params)  # warm up
        times, queries, size = [], 0, 0
        for _ in range(requests):
            with CaptureQueriesContext(connection) as captured:
                started = time.perf_counter()
                response = client.get(url, params)
                times.append(time.perf_counter() - started)
            assert response.status_code == 200, (title, response.status_code)
            queries, size = len(captured.captured_queries), len(response.content)
        rows.append((title, statistics.median(times), max(times), queries, size))
        say(f"{title}: median {statistics.median(times) * 1000:.0f} ms, {queries} queries")
        if show_plans:
            explain([q["sql"] for q in captured.captured_queries])
    print("\n| page | median | max | queries | bytes |\n| --- | ---: | ---: | ---: | ---: |")
    for title, median, worst, queries, size in rows:
        print(
            f"| {title} | {median * 1000:,.0f} ms | {worst * 1000:,.0f} ms | {queries} | {size:,} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=1_000_000)
    parser.add_argument("--decisions-per-account", type=int, default=2)
    parser.add_argument("--requests", type=int, default=5)
    parser.add_argument("--explain", action="store_true")
    add_database_arguments(parser, "bench_admin")
    args = parser.parse_args()
    settings.DEBUG = False
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    settings.SECURE_SSL_REDIRECT = False
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    with scratch_database("bench_admin", prefix=args.db_prefix, keep=args.keep) as kept:
        from portfolio.models import Account

        if not kept or Account.objects.count() != args.accounts:
            if kept:
                raise SystemExit("kept database has another size: drop it or omit --keep")
            started = time.monotonic()
            say(f"generating {args.accounts:,} accounts")
            generate(args.accounts, args.decisions_per_account)
            analyze()
            say(f"generated in {time.monotonic() - started:.0f} s")
        say(f"measuring (load {load()})")
        measure(args.requests, args.explain)
        say(f"done (load {load()})")


if __name__ == "__main__":
    main()
