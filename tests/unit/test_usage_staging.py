"""Reading usage CSV lines into staged rows (usage.services.staged_from_csv): no database.

The fast path for ordinary lines must give what the general one gave: the file's line
numbers, blank lines skipped, a line too short for the mapping rejected with its reason,
empty fields as missing (so the SQL check says "Required")."""

from __future__ import annotations

import json

from usage.services import csv_mapping, staged_from_csv


def test_lines_numbers_blanks_short_lines_and_reordered_columns():
    header = ["value", "metric", "account", "period", "note"]
    rows = [
        ["5", "active_users", " 001A ", "2026-11", "x"],
        ["", "", "", "", ""],
        [" ", "", "", ""],
        ["only", "two"],
        ["", "", "", "", "a note only"],
        ["7", "tickets_opened", "001B", "2026-10"],
    ]
    staged = list(staged_from_csv(rows, mapping=csv_mapping(header)))
    assert [s[0] for s in staged] == [2, 5, 6, 7]
    assert staged[0] == (2, "001A", "2026-11", "active_users", "5", "c", None, None)
    line, *fields, vtype, errors, raw = staged[1]
    assert (line, fields, vtype, json.loads(raw)) == (5, [None] * 4, "x", ["only", "two"])
    assert json.loads(errors) == {"row": ["2 columns; the mapping needs 4."]}
    assert staged[2] == (6, None, None, None, None, "c", None, None)
    assert staged[3][:5] == (7, "001B", "2026-10", "tickets_opened", "7")
