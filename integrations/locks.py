"""One run per source at a time: a PostgreSQL session advisory lock, which dies with its
connection, so a killed worker never leaves it held."""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection

# The Salesforce sync's lock: one sync at a time, and the bulk load's set-aside indexes
# (integrations/bulkload.py) are rebuilt by someone else only while nobody holds it.
SALESFORCE_SYNC_LOCK = zlib.crc32(b"portfolio.sync.salesforce")


@contextmanager
def advisory_lock(key: int) -> Iterator[bool]:
    """Take the lock if it is free, without waiting; yields whether it was taken, and
    releases it on the way out if so."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
        held = bool(cursor.fetchone()[0])
    try:
        yield held
    finally:
        if held:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [key])
