"""`manage.py import_usage FILE|-`: product usage rows from a CSV (`account,period,metric,
value`, header first) or NDJSON file, or from standard input.

Idempotent by (account, period, metric): a rerun adds nothing. Every bad row is quarantined
with its reason (Sync runs page). A progress bar on a terminal, then one summary line.
Exit status 1 when the file cannot be read or the import failed; 0 otherwise, also when rows
were quarantined."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import IO

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from usage import services


class Command(BaseCommand):
    help = "Import product usage rows (CSV or NDJSON) from FILE, or '-' for standard input."

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", help="A .csv or .ndjson file, or - for standard input.")
        parser.add_argument(
            "--format",
            choices=("csv", "ndjson"),
            help="Default: from the file's extension (.ndjson/.jsonl: NDJSON), else CSV.",
        )
        parser.add_argument(
            "--batch-rows", type=int, default=services.BATCH_ROWS, help="Rows per transaction."
        )
        parser.add_argument(
            "--no-assess",
            action="store_true",
            help="Do not re-assess the touched accounts' health now (the daily run will).",
        )

    def handle(self, *args, file: str, **options) -> None:
        fmt = options.get("format") or ("ndjson" if file.endswith((".ndjson", ".jsonl")) else "csv")
        try:
            if fmt == "csv":  # bytes: COPYed as they are (services.CsvFile)
                stream = sys.stdin.buffer if file == "-" else Path(file).open("rb")  # noqa: SIM115
            else:
                stream = (
                    sys.stdin if file == "-" else Path(file).open(encoding="utf-8", newline="")  # noqa: SIM115
                )
        except OSError as exc:
            raise CommandError(f"{file}: {exc.strerror}") from None
        interactive = sys.stdout.isatty() and options.get("verbosity", 1) > 0
        bar = tqdm(desc="usage rows", unit="row", disable=not interactive)

        def progress(done: int) -> None:
            bar.n = done
            bar.refresh()

        try:
            rows = self._rows(stream, fmt)
            result = services.usage_import(
                rows=rows,
                trigger="command",
                where="line",
                details={"file": "stdin" if file == "-" else Path(file).name, "format": fmt},
                progress=progress,
                batch_rows=options["batch_rows"],
                assess=not options["no_assess"],
            )
        except ValueError as exc:
            raise CommandError(f"{file}: {exc}") from None
        finally:
            bar.close()
            if stream not in (sys.stdin, getattr(sys.stdin, "buffer", None)):
                stream.close()
        self.stdout.write(result.summary())

    def _rows(self, stream: IO, fmt: str):
        if fmt == "ndjson":
            return services.staged_from_ndjson(stream)
        return services.CsvFile.open(stream)
