"""`manage.py sync_salesforce`: pull User, Account and Opportunity from Salesforce now.

A progress bar per object on a terminal, then one summary line. Exit status 1 when the run
failed (PostgreSQL lost: one line saying so, no traceback); 0 when it succeeded, completed
with quarantined records, or was skipped because another sync holds the lock (a `skipped`
row records it).
"""

from __future__ import annotations

import sys

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from integrations.models import SyncStatus
from portfolio.sync.run import CONNECTION_LOST, DatabaseLost, sync_salesforce


class Command(BaseCommand):
    help = "Pull User, Account and Opportunity from Salesforce (incremental by SystemModstamp)."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--full",
            action="store_true",
            help="Ignore the cursors and fetch every record (unchanged ones write nothing).",
        )

    def handle(self, *args, full: bool = False, **options) -> None:
        if not settings.SALESFORCE_ENABLED:
            raise CommandError(
                "Salesforce is not configured: set SALESFORCE_INSTANCE_URL and "
                "SALESFORCE_SESSION_ID, or SALESFORCE_USERNAME, SALESFORCE_PASSWORD and "
                "SALESFORCE_SECURITY_TOKEN."
            )
        interactive = sys.stdout.isatty() and options.get("verbosity", 1) > 0
        bars: dict[str, tqdm] = {}

        def progress(obj: str, done: int, total: int) -> None:
            if not interactive:
                return
            bar = bars.get(obj)
            if bar is None:
                bar = bars[obj] = tqdm(total=total, desc=obj, unit="rec", leave=True)
            bar.total = max(total, done)
            bar.n = done
            bar.refresh()

        try:
            outcome = sync_salesforce(trigger="command", full=full, progress=progress)
        except DatabaseLost as exc:
            raise CommandError(str(exc)) from None
        except CONNECTION_LOST as exc:  # before the run started (e.g. taking the lock)
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CommandError(
                f"Salesforce sync not started: PostgreSQL unreachable ({first})."
            ) from None
        finally:
            for bar in bars.values():
                bar.close()
        self.stdout.write(outcome.summary())
        if outcome.run is not None and outcome.run.status == SyncStatus.FAILED:
            raise CommandError(f"Salesforce sync run {outcome.run.pk} failed.")
