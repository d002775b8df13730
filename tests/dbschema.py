"""What PostgreSQL says a table's indexes and constraints are, for before/after asserts."""

from __future__ import annotations

from django.db import connection


def schema_of(*tables: str) -> dict[str, tuple[list, list]]:
    """Per table: its index definitions, and its constraints (name, definition, validated)."""
    out = {}
    with connection.cursor() as c:
        for table in tables:
            c.execute("SELECT indexdef FROM pg_indexes WHERE tablename = %s ORDER BY 1", [table])
            indexes = [row[0] for row in c.fetchall()]
            c.execute(
                "SELECT conname, pg_get_constraintdef(oid), convalidated FROM pg_constraint "
                "WHERE conrelid = %s::regclass ORDER BY 1",
                [table],
            )
            out[table] = (indexes, c.fetchall())
    return out
