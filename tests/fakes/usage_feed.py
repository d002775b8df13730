"""A product usage feed for tests and benchmarks: what a usage pipeline would send
`POST /api/v1/usage` or `manage.py import_usage` for a set of Salesforce ids (issue 16).

Monthly rows of the six built-in metrics (active users, licensed seats, version, stages
in use, tickets opened, new features used) for `months` months ending in `last` (this
month by default), shaped like real usage rather than constants:

- seasonality: fewer active users in August and December (holidays), more in
  January and September; a slow growth towards the account's level of adoption;
- an adoption drop in the last month for some accounts (`AccountProfile.drop`: a third
  of the active users gone, the amber "adoption dropped" early warning);
- version lag: each account runs `majors_behind` major releases behind `latest_major`,
  moving up a minor release every month or two, one major further behind a year ago;
- tickets a month around the account's mean (more for low adoption), stages in use
  (the names, growing over the year), new features used.

Deterministic: each account's numbers come from `random.Random` seeded by its id, so a
test can assert on the signals, and a rerun of the feed is the same rows (the import
stores nothing twice). Rows are the JSON API's dicts; `as_ndjson` and `as_csv` give the
same rows as a request body or a file."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

STAGES = (
    "plan", "create", "verify", "package", "secure", "release", "configure", "monitor",
    "govern", "manage",
)  # fmt: skip
# Active users in a month against the account's usual level (the holidays, the returns).
SEASON = {
    1: 1.04, 2: 1.0, 3: 1.02, 4: 1.0, 5: 0.99, 6: 0.97,
    7: 0.93, 8: 0.88, 9: 1.03, 10: 1.02, 11: 1.0, 12: 0.9,
}  # fmt: skip
DROP = 2 / 3  # the share of active users left in the month of a drop


@dataclass(frozen=True)
class AccountProfile:
    """How one account uses the product (see `profiles`; `dataclasses.replace` to pin one
    measure for a test)."""

    salesforce_id: str
    seats: int
    adoption: float  # share of the seats active in a usual month, once grown into it
    majors_behind: int
    tickets: int  # tickets opened in a usual month
    stages: int
    new_features: int
    drop: bool = False  # a third of the active users lost in the last month


def profiles(salesforce_ids: Iterable[str], *, drop_every: int = 4) -> list[AccountProfile]:
    """A profile per id, drawn from its own seeded generator; every `drop_every`th account
    (the 1st, the 5th, ...) drops in the last month (0: none)."""
    out = []
    for index, sfid in enumerate(salesforce_ids):
        rng = random.Random(f"usage-feed:{sfid}")  # nosec B311 # test data, not security
        adoption = rng.uniform(0.25, 0.95)
        out.append(
            AccountProfile(
                salesforce_id=sfid,
                seats=rng.choice((50, 120, 400, 1000, 2500)),
                adoption=adoption,
                majors_behind=rng.choice((0, 0, 1, 1, 2, 3)),
                # Low adoption goes with more tickets.
                tickets=round(rng.uniform(1, 12) + (1 - adoption) * 20),
                stages=rng.randint(1, 10),
                new_features=rng.choice((0, 0, 1, 2, 4)),
                drop=bool(drop_every) and index % drop_every == 0,
            )
        )
    return out


def _month(last: dt.date, back: int) -> dt.date:
    index = last.year * 12 + last.month - 1 - back
    return dt.date(index // 12, index % 12 + 1, 1)


def active_users(profile: AccountProfile, month: dt.date, back: int, *, months: int) -> int:
    """The month's active users: the level grown into over the history, the season's
    swing, a little noise (seeded by account and month), and the drop in the last month."""
    rng = random.Random(f"usage-feed:{profile.salesforce_id}:{month}")  # nosec B311 # test data
    grown = 0.85 + 0.15 * (months - back) / months
    level = profile.adoption * grown * SEASON[month.month] * rng.uniform(0.98, 1.02)
    if profile.drop and back == 0:
        level *= DROP
    return max(1, min(profile.seats, round(profile.seats * level)))


def monthly_rows(
    accounts: Sequence[AccountProfile],
    *,
    last: dt.date | None = None,
    months: int = 13,
    latest_major: int = 19,
) -> Iterator[dict]:
    """The feed's rows, account by account, month by month (oldest first)."""
    last = last or dt.date.today()
    for p in accounts:
        for back in range(months - 1, -1, -1):
            month = _month(last, back)
            rng = random.Random(f"usage-feed:{p.salesforce_id}:{month}:rest")  # nosec B311 # test data
            # A year ago one major further behind; a minor release every other month.
            major = latest_major - p.majors_behind - (1 if back >= 12 else 0)
            minor = (months - back) // 2 % 10
            used = max(1, p.stages - (1 if back >= 6 else 0))
            period = f"{month:%Y-%m}"
            values = {
                "licensed_seats": p.seats,
                "active_users": active_users(p, month, back, months=months),
                "version": f"{major}.{minor}",
                "stages_in_use": list(STAGES[:used]),
                "tickets_opened": max(0, round(rng.gauss(p.tickets, p.tickets / 4 + 0.5))),
                "new_features_used": max(0, p.new_features - rng.choice((0, 0, 1))),
            }
            for metric, value in values.items():
                yield {
                    "account": p.salesforce_id,
                    "period": period,
                    "metric": metric,
                    "value": value,
                }


def as_ndjson(rows: Iterable[dict]) -> bytes:
    """One JSON object a line (`Content-Type: application/x-ndjson`)."""
    return b"".join(json.dumps(row).encode() + b"\n" for row in rows)


def as_csv(rows: Iterable[dict]) -> bytes:
    """`account,period,metric,value` with a header; stage names joined by ';'."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["account", "period", "metric", "value"])
    for row in rows:
        value = row["value"]
        writer.writerow(
            [
                row["account"],
                row["period"],
                row["metric"],
                ";".join(value) if isinstance(value, list) else value,
            ]
        )
    return out.getvalue().encode()
