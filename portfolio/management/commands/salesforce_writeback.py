"""`manage.py salesforce_writeback`: write what Portfolio decided back to Salesforce now.

- no option: one sweep (as the 15-minute schedule does), then one summary line;
- `--dry-run`: what a sweep would send, per field, with a sample; nothing is written and
  Salesforce is not called;
- `--confirm RUN` / `--cancel RUN`: decide a mass change the brake held in run RUN (the
  sync-runs page offers the same to admins); `--confirm` then writes it.

Exit status 1 when the run failed; 0 otherwise (a sweep held by the brake says so).
"""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from integrations.models import SyncRun, SyncStatus
from portfolio import writeback


class Command(BaseCommand):
    help = "Write TAM, health and priority changes decided in Portfolio back to Salesforce."

    def add_arguments(self, parser) -> None:
        group = parser.add_mutually_exclusive_group()
        group.add_argument(
            "--dry-run", action="store_true", help="Print what would be sent; write nothing."
        )
        group.add_argument(
            "--confirm", type=int, metavar="RUN", help="Confirm the mass change held in RUN."
        )
        group.add_argument(
            "--cancel", type=int, metavar="RUN", help="Decline the mass change held in RUN."
        )

    def handle(self, *args, dry_run=False, confirm=None, cancel=None, **options) -> None:
        if dry_run:
            self._preview()
            return
        if not settings.SALESFORCE_ENABLED:
            raise CommandError(
                "Salesforce is not configured: set SALESFORCE_INSTANCE_URL and "
                "SALESFORCE_SESSION_ID, or SALESFORCE_USERNAME, SALESFORCE_PASSWORD and "
                "SALESFORCE_SECURITY_TOKEN."
            )
        try:
            if cancel is not None:
                count = writeback.writeback_cancel(run_id=cancel, user=None)
                self.stdout.write(f"Run {cancel}: {count} change(s) will not be written.")
                return
            run = None
            if confirm is not None:
                count = writeback.writeback_confirm(run_id=confirm, user=None)
                self.stdout.write(f"Run {confirm}: {count} change(s) confirmed.")
                run = SyncRun.objects.get(pk=confirm)
        except (SyncRun.DoesNotExist, ValueError) as exc:
            raise CommandError(str(exc) or f"No write-back run {confirm or cancel}.") from None
        while True:
            result = writeback.writeback_push(confirm_run=run, trigger="command")
            self.stdout.write(result.summary())
            if not result.more:
                break
        if result.run is not None and result.run.status == SyncStatus.FAILED:
            raise CommandError(f"Write-back run {result.run.pk} failed: {result.run.error}")

    def _preview(self) -> None:
        preview = writeback.writeback_preview()
        if not preview["fields"]:
            self.stdout.write("Nothing to write back: Salesforce has everything Portfolio decided.")
            return
        for name, counts in preview["fields"].items():
            self.stdout.write(
                f"{writeback.salesforce_field(name)}: {counts['send']} to send "
                f"({counts['clears']} clearing), {counts['in_sync']} already in Salesforce, "
                f"{counts['conflicts']} in conflict"
            )
        for row in preview["sample"]:
            self.stdout.write(
                f"  {row['salesforce_id']} {row['account']}: {row['field']} "
                f"{row['from']!r} -> {row['to']!r} ({row['origin']})"
            )
        brake = preview["brake"]
        if brake is not None:
            self.stdout.write(
                f"The brake would stop this sweep ({', '.join(brake['over'])}: more than "
                f"{brake['limit']} of {brake['book']} accounts, or clearing values); an admin "
                "confirms it on the sync-runs page or with --confirm RUN."
            )
        self.stdout.write("Dry run: nothing was written.")
