"""`manage.py sync_gitlab`: mirror the triage board both ways now, with a progress bar."""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand
from tqdm import tqdm

from triage import mirror


class Command(BaseCommand):
    help = (
        "Pull label and state changes from the GitLab Account Triage board and push pending "
        "triage issues; prints a one-line summary."
    )

    def handle(self, *args, **options) -> None:
        bar = tqdm(
            total=0,
            unit="issue",
            desc="GitLab triage",
            disable=not sys.stderr.isatty(),
            file=sys.stderr,
        )

        def progress(done: int, total: int) -> None:
            if bar.total != total:
                bar.total = total
            bar.n = done
            bar.refresh()

        try:
            result = mirror.triage_gitlab_sync(trigger="command", progress=progress)
        finally:
            bar.close()
        self.stdout.write(result.message)
