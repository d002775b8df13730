"""`manage.py reevaluate_priorities [--dry-run]`: re-evaluate every account now."""

from __future__ import annotations

import datetime as dt
import sys

from django.core.management.base import BaseCommand, CommandParser
from tqdm import tqdm

from prioritization.models import ReviewCause
from prioritization.services import DEFAULT_BATCH_SIZE, priorities_reevaluate


class Command(BaseCommand):
    help = "Re-evaluate every account's priority by its region's rule set."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run", action="store_true", help="Evaluate and report, write nothing."
        )
        parser.add_argument(
            "--as-of", type=dt.date.fromisoformat, default=None, help="YYYY-MM-DD (default today)"
        )
        parser.add_argument(
            "--cause",
            choices=[ReviewCause.MANUAL, ReviewCause.QUARTERLY_REVIEW],
            default=ReviewCause.MANUAL,
            help="Recorded on each decision (default manual).",
        )
        parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)

    def handle(self, *args, **options) -> None:
        # A progress bar on a terminal only; logs and tests get just the summary line.
        bar = tqdm(
            total=0,
            unit="accounts",
            disable=not sys.stderr.isatty(),
            file=sys.stderr,
            desc="Re-evaluating",
        )

        def set_total(n: int) -> None:
            bar.total = n
            bar.refresh()

        try:
            result = priorities_reevaluate(
                cause=options["cause"],
                as_of=options["as_of"],
                dry_run=options["dry_run"],
                batch_size=options["batch_size"],
                progress=bar.update,
                total=set_total,
            )
        finally:
            bar.close()
        self.stdout.write(result.summary())
