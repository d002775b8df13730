"""`manage.py load_demo`: the deterministic demo book of business (portfolio/demo_data.py).

Idempotent: users are matched by username, everything from Salesforce by its
salesforce_id (bulk upserts), activities by (account, kind, subject); running it twice
duplicates nothing. Passwords are set only when a user is created. After the core data,
each local app's `<app>.demo.populate(stdout=...)` runs, when the app has one, in the same
transaction.
"""

from __future__ import annotations

import datetime as dt
import importlib
import sys
import time
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import connection, transaction
from django.utils import timezone
from tqdm import tqdm

from portfolio import demo_data
from portfolio.models import (
    Account,
    AccountEvent,
    Activity,
    Contact,
    KeyPersona,
    Opportunity,
    Persona,
    Region,
    SalesforceUser,
    SalesManager,
    Team,
)

APPS_WITH_DEMO = [
    "integrations",
    "portfolio",
    "prioritization",
    "triage",
    "engagement",
    "usage",
]

# Updated on a rerun. `health` and `priority` are written only when an account is created:
# afterwards they belong to the apps (health assessments, priority decisions), and
# resetting them would add a history event per account on every rerun.
ACCOUNT_FIELDS = [
    "name", "parent", "parent_salesforce_id", "owner", "arr", "region", "segment", "tam",
    "renewal_date", "customer_since", "plan", "digital_only", "lam", "licensed_seats",
    "onboarding_started", "onboarding_completed", "stages_adopted",
    "success_plan", "stage_adoption_hours_per_week", "infrastructure_change_hours_per_week",
    "churn_risk", "critical_project", "key_logo", "channel_engagement", "nps", "org_change",
    "weekly_engagement_requested", "expansion_play", "tam_handover",
]  # fmt: skip
SIGNAL_FIELDS = ACCOUNT_FIELDS[ACCOUNT_FIELDS.index("stage_adoption_hours_per_week") :]


class Command(BaseCommand):
    help = (
        "Load the demo data set (5 regions, 3 managers, 15 TAMs, an EMEA sales manager, "
        "~1,500 accounts)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--if-empty",
            action="store_true",
            help="Do nothing when accounts already exist (used by `make run`).",
        )
        parser.add_argument(
            "--no-apps",
            action="store_true",
            help="Load only the core data; skip the apps' demo.populate() hooks.",
        )

    def handle(self, *args, if_empty: bool = False, no_apps: bool = False, **options):
        if if_empty and Account.objects.exists():
            self.stdout.write("load_demo: accounts already present; demo data not loaded again.")
            return
        started = time.monotonic()
        as_of = timezone.localdate()
        data = demo_data.generate(as_of, alignment_threshold=settings.TAM_ALIGNMENT_THRESHOLD_USD)
        hooks = [] if no_apps else _demo_hooks()
        steps = ["users", "accounts", "opportunities", "contacts", "activities"]
        steps += [f"{app}.demo" for app, _ in hooks] + ["history"]
        interactive = hasattr(sys.stderr, "isatty") and sys.stderr.isatty()
        counts: dict[str, tuple[int, int]] = {}
        bar = tqdm(total=len(steps), desc="load_demo", unit="step", disable=not interactive)
        # All or nothing: when an app's hook fails, the next `load_demo --if-empty` (make
        # run) starts again from an empty database instead of skipping a half-made demo.
        with bar, transaction.atomic():
            for step in steps[:5]:
                bar.set_postfix_str(step)
                counts[step] = getattr(self, f"_load_{step}")(data, as_of)
                bar.update()
            for app, populate in hooks:
                bar.set_postfix_str(app)
                populate(stdout=self.stdout)
                bar.update()
            # After the apps: the history ends in the colours and priorities they decided.
            counts["history"] = self._load_history(data, as_of)
            bar.update()
        summary = ", ".join(
            f"{name} {total:,} ({created:,} new)" for name, (total, created) in counts.items()
        )
        apps = f"; app demo data: {', '.join(a for a, _ in hooks) or 'none'}"
        elapsed = time.monotonic() - started
        self.stdout.write(f"load_demo: {summary}{apps}; {elapsed:.1f}s")

    # --- steps ------------------------------------------------------------------------

    def _load_users(self, data: demo_data.DemoData, as_of: dt.date) -> tuple[int, int]:
        user_model = get_user_model()
        usernames = [u.username for u in data.users]
        existing = set(
            user_model.objects.filter(username__in=usernames).values_list("username", flat=True)
        )
        # One hash for the whole demo: the password is published in the README, and
        # hashing 19 times would cost seconds. Existing users keep their password.
        password = make_password(demo_data.DEMO_PASSWORD)
        user_model.objects.bulk_create(
            [
                user_model(
                    username=u.username,
                    first_name=u.first_name,
                    last_name=u.last_name,
                    email=u.email,
                    password=password,
                    is_staff=u.role == "Admin",
                    is_superuser=u.role == "Admin",
                )
                for u in data.users
                if u.username not in existing
            ]
        )
        users = {u.username: u for u in user_model.objects.filter(username__in=usernames)}
        # Created by a data migration; also here for a database flushed since (tests).
        roles = ["TAM", "Manager", "Admin", "Sales Management"]
        Group.objects.bulk_create([Group(name=n) for n in roles], ignore_conflicts=True)
        groups = {g.name: g for g in Group.objects.filter(name__in=roles)}
        membership = user_model.groups.through
        membership.objects.bulk_create(
            [
                membership(user_id=users[u.username].pk, group_id=groups[u.role].pk)
                for u in data.users
            ],
            ignore_conflicts=True,
        )
        regions = {r.code for r in Region.objects.all()}
        missing = set(demo_data.REGIONS) - regions
        Region.objects.bulk_create([Region(code=c, name=c) for c in sorted(missing)])
        Team.objects.bulk_create(
            [Team(name=t.name, manager=users[t.manager], region_id=t.region) for t in data.teams],
            update_conflicts=True,
            unique_fields=["name"],
            update_fields=["manager", "region"],
        )
        teams = {t.name: t for t in Team.objects.filter(name__in=[t.name for t in data.teams])}
        Team.tams.through.objects.bulk_create(
            [
                Team.tams.through(team_id=teams[t.name].pk, user_id=users[tam].pk)
                for t in data.teams
                for tam in t.tams
            ],
            ignore_conflicts=True,
        )
        SalesManager.objects.bulk_create(
            [SalesManager(user=users[name]) for name in demo_data.SALES_MANAGERS],
            ignore_conflicts=True,
        )
        sales = dict(
            SalesManager.objects.filter(user__username__in=demo_data.SALES_MANAGERS).values_list(
                "user__username", "pk"
            )
        )
        SalesManager.regions.through.objects.bulk_create(
            [
                SalesManager.regions.through(salesmanager_id=sales[name], region_id=code)
                for name, codes in demo_data.SALES_MANAGERS.items()
                for code in codes
            ],
            ignore_conflicts=True,
        )
        by_sfid = {u.salesforce_id: users[u.username] for u in data.users if u.salesforce_id}
        SalesforceUser.objects.bulk_create(
            [
                SalesforceUser(
                    salesforce_id=ae["salesforce_id"],
                    name=ae["name"],
                    email=ae["email"],
                    user=by_sfid.get(ae["salesforce_id"]),
                )
                for ae in data.account_executives
            ],
            update_conflicts=True,
            unique_fields=["salesforce_id"],
            update_fields=["name", "email", "user"],
        )
        self._users = users
        return len(users), len(users) - len(existing)

    def _load_accounts(self, data: demo_data.DemoData, as_of: dt.date) -> tuple[int, int]:
        sfids = [a["salesforce_id"] for a in data.accounts]
        existing = set(
            Account.objects.filter(salesforce_id__in=sfids).values_list("salesforce_id", flat=True)
        )
        owners = dict(SalesforceUser.objects.values_list("salesforce_id", "pk"))
        users = self._users
        ids: dict[str, int] = {}
        top = [a for a in data.accounts if not a["parent"]]
        children = [a for a in data.accounts if a["parent"]]
        for batch in (top, children):  # parents first: children point at their ids
            rows = []
            for a in batch:
                values = {k: a.get(k) for k in SIGNAL_FIELDS}
                for k in ("stage_adoption_hours_per_week", "infrastructure_change_hours_per_week"):
                    values[k] = Decimal(str(values[k] or 0))
                for k in SIGNAL_FIELDS:
                    if values[k] is None and k != "nps":
                        values[k] = False
                rows.append(
                    Account(
                        salesforce_id=a["salesforce_id"],
                        name=a["name"],
                        parent_id=ids.get(a["parent"]) if a["parent"] else None,
                        parent_salesforce_id=a["parent"] or "",
                        owner_id=owners.get(a["owner"]),
                        arr=Decimal(a["arr"]),
                        region_id=a["region"],
                        segment=a["segment"],
                        tam_id=users[a["tam"]].pk if a["tam"] else None,
                        renewal_date=a["renewal_date"],
                        customer_since=a["customer_since"],
                        plan=a["plan"],
                        digital_only=a["digital_only"],
                        lam=a["lam"],
                        licensed_seats=a["licensed_seats"],
                        health=a["health"],
                        priority=a["priority"],
                        onboarding_started=a["onboarding_started"],
                        onboarding_completed=a["onboarding_completed"],
                        stages_adopted=a["stages_adopted"],
                        success_plan=a["success_plan"],
                        **values,
                    )
                )
            saved = Account.objects.bulk_create(
                rows,
                batch_size=500,
                update_conflicts=True,
                unique_fields=["salesforce_id"],
                update_fields=ACCOUNT_FIELDS,
            )
            ids.update((acc.salesforce_id, acc.pk) for acc in saved)
        self._account_ids = ids
        return len(ids), len(ids) - len(existing)

    def _load_opportunities(self, data: demo_data.DemoData, as_of: dt.date) -> tuple[int, int]:
        sfids = [o["salesforce_id"] for o in data.opportunities]
        existing = Opportunity.objects.filter(salesforce_id__in=sfids).count()
        Opportunity.objects.bulk_create(
            [
                Opportunity(
                    salesforce_id=o["salesforce_id"],
                    account_id=self._account_ids[o["account"]],
                    account_salesforce_id=o["account"],
                    name=o["name"][:255],
                    type=o["type"],
                    stage_name=o["stage_name"],
                    close_date=o["close_date"],
                    amount=Decimal(o["amount"]),
                    is_closed=o["is_closed"],
                    is_won=o["is_won"],
                )
                for o in data.opportunities
            ],
            batch_size=1000,
            update_conflicts=True,
            unique_fields=["salesforce_id"],
            update_fields=[
                "account",
                "account_salesforce_id",
                "name",
                "type",
                "stage_name",
                "close_date",
                "amount",
                "is_closed",
                "is_won",
            ],  # fmt: skip
        )
        return len(sfids), len(sfids) - existing

    def _load_contacts(self, data: demo_data.DemoData, as_of: dt.date) -> tuple[int, int]:
        sfids = [c["salesforce_id"] for c in data.contacts]
        existing = Contact.objects.filter(salesforce_id__in=sfids).count()
        Contact.objects.bulk_create(
            [
                Contact(
                    salesforce_id=c["salesforce_id"],
                    account_id=self._account_ids[c["account"]],
                    name=c["name"],
                    email=c["email"],
                    title=c["title"],
                )
                for c in data.contacts
            ],
            batch_size=1000,
            update_conflicts=True,
            unique_fields=["salesforce_id"],
            update_fields=["account", "name", "email", "title"],
        )
        # The personas each contact holds (many-to-many): created once, kept on a rerun.
        ids = dict(
            Contact.objects.filter(salesforce_id__in=sfids).values_list("salesforce_id", "pk")
        )
        KeyPersona.objects.bulk_create(
            [KeyPersona(key=k) for k in Persona.values], ignore_conflicts=True
        )
        Contact.personas.through.objects.bulk_create(
            [
                Contact.personas.through(contact_id=ids[c["salesforce_id"]], keypersona_id=p)
                for c in data.contacts
                for p in c["personas"]
            ],
            batch_size=2000,
            ignore_conflicts=True,
        )
        return len(sfids), len(sfids) - existing

    def _load_activities(self, data: demo_data.DemoData, as_of: dt.date) -> tuple[int, int]:
        ids = self._account_ids
        present = set(
            Activity.objects.filter(account_id__in=ids.values()).values_list(
                "account_id", "kind", "subject"
            )
        )
        tz = timezone.get_current_timezone()
        rows = []
        for a in data.activities:
            key = (ids[a["account"]], a["kind"], a["subject"])
            if key in present:
                continue
            present.add(key)
            day = as_of - dt.timedelta(days=a["days_back"])
            rows.append(
                Activity(
                    account_id=key[0],
                    kind=a["kind"],
                    subject=a["subject"],
                    occurred_at=dt.datetime.combine(day, dt.time(a["hour"]), tzinfo=tz),
                    user_id=self._users[a["user"]].pk if a["user"] else None,
                )
            )
        Activity.objects.bulk_create(rows, batch_size=2000)
        return len(data.activities), len(rows)

    def _load_history(self, data: demo_data.DemoData, as_of: dt.date) -> tuple[int, int]:
        """A year of month-end states per account in the account history (backdated
        events, `demo_data.past_states`), so the trend charts show a trend. Written once:
        a database that already has history older than a few weeks gets none."""
        tz = timezone.get_current_timezone()
        recent = timezone.now() - dt.timedelta(days=20)
        accounts = list(Account.objects.values_list("pk", "salesforce_id", "arr", "health",
                                                    "priority", "tam_id"))  # fmt: skip
        total = len(accounts) * demo_data.HISTORY_MONTHS
        if AccountEvent.objects.filter(pgh_created_at__lt=recent).exists():
            return total, 0
        month_start = as_of.replace(day=1)
        rows: list[tuple] = []
        for pk, sfid, arr, health, priority, tam_id in accounts:
            past = demo_data.past_states(sfid, arr=float(arr), health=health, priority=priority)
            for ago, value, colour, level in past:
                end = _add_months(month_start, -ago + 1) - dt.timedelta(days=1)
                at = dt.datetime.combine(end, dt.time(18), tzinfo=tz)
                label = "insert" if ago == demo_data.HISTORY_MONTHS else "update"
                rows.append((pk, at, label, Decimal(str(value)), tam_id, colour, level))
        # Raw SQL: the event model's pgh_created_at is auto_now_add, which the ORM would
        # overwrite with now.
        columns = list(zip(*rows, strict=True)) if rows else [[]] * 7
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                INSERT INTO {AccountEvent._meta.db_table}
                    (pgh_obj_id, pgh_created_at, pgh_label, arr, tam_id, health, priority)
                SELECT * FROM unnest(%s::bigint[], %s::timestamptz[], %s::text[],
                                     %s::numeric[], %s::bigint[], %s::text[], %s::int[])
                """,  # nosec B608 # the table name comes from code, values are parameters
                [list(c) for c in columns],
            )
        return total, len(rows)


def _add_months(day: dt.date, months: int) -> dt.date:
    index = day.month - 1 + months
    return dt.date(day.year + index // 12, index % 12 + 1, 1)


def _demo_hooks() -> list[tuple[str, object]]:
    """`(app, populate)` for each local app that ships `<app>/demo.py` with `populate`."""
    hooks = []
    for app in APPS_WITH_DEMO:
        name = f"{app}.demo"
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue  # this app has no demo data
            raise
        populate = getattr(module, "populate", None)
        if callable(populate):
            hooks.append((app, populate))
    return hooks
