"""Salesforce records -> validated rows: every reason a record is quarantined is here.

Each parser returns the staging-table row of one record (Id first, SystemModstamp last) or
raises `Rejected` with a reason a person can act on (what is wrong, where to fix it).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from django.conf import settings

from portfolio.models import Health, Segment

MAX_ARR = Decimal("999999999999.99")  # numeric(14, 2)
MAX_INT = 2_147_483_647


class Rejected(Exception):
    """A record that cannot be stored; the message is the reason shown to people."""


# --- field parsing -------------------------------------------------------------------------


def _storable(value: str) -> bool:
    """PostgreSQL text holds neither NUL bytes nor lone surrogates (broken characters)."""
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _text(record: dict, name: str, *, max_length: int, required: bool = False) -> str:
    value = record.get(name)
    if type(value) is str and 0 < len(value) <= max_length and _storable(value):
        return value  # the common case, first
    if value is None or value == "":
        if required:
            raise Rejected(f"{name} is empty. Fill it in on the Salesforce record.")
        return ""
    value = str(value)
    if len(value) > max_length:
        raise Rejected(
            f"{name} is {len(value)} characters long; Portfolio keeps at most {max_length}. "
            "Shorten it in Salesforce."
        )
    if not _storable(value):
        raise Rejected(
            f"{name} contains a character that cannot be stored (a NUL byte or a broken "
            "character). Correct it in Salesforce."
        )
    return value


def _decimal(record: dict, name: str, *, maximum: Decimal = MAX_ARR) -> Decimal | None:
    value = record.get(name)
    if type(value) is Decimal and 0 <= value <= maximum:
        return value  # the common case, first
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise Rejected(f"{name} is {value!r}, which is not a number. Correct it in Salesforce.")
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value))
    except InvalidOperation:
        raise Rejected(
            f"{name} is {value!r}, which is not a number. Correct it in Salesforce; the next "
            "sync stores the record."
        ) from None
    if not number.is_finite() or number < 0 or number > maximum:
        raise Rejected(
            f"{name} is {value!r}; it must be between 0 and {maximum}. Correct it in Salesforce."
        )
    return number


def _integer(record: dict, name: str, *, low: int = 0, high: int = MAX_INT) -> int | None:
    value = record.get(name)
    if type(value) is int and low <= value <= high:
        return value  # the common case, first
    if value is None or value == "":
        return None
    try:
        if isinstance(value, bool):
            raise InvalidOperation
        number = value if isinstance(value, Decimal) else Decimal(str(value))
    except InvalidOperation:
        raise Rejected(
            f"{name} is {value!r}, which is not a number. Correct it in Salesforce."
        ) from None
    if not number.is_finite() or number != number.to_integral_value() or not low <= number <= high:
        raise Rejected(
            f"{name} is {value!r}; it must be a whole number from {low} to {high}. "
            "Correct it in Salesforce."
        )
    return int(number)


def _date(record: dict, name: str, *, required: bool = False) -> dt.date | None:
    value = record.get(name)
    if value is None or value == "":
        if required:
            raise Rejected(f"{name} is empty. Fill it in on the Salesforce record.")
        return None
    try:
        if not isinstance(value, str) or len(value) != 10:
            raise ValueError(value)
        return dt.date.fromisoformat(value)
    except ValueError:
        raise Rejected(
            f"{name} is {value!r}, which is not a real date (expected YYYY-MM-DD). Correct it "
            "in Salesforce; the next sync stores the record."
        ) from None


def _bool(record: dict, name: str) -> bool:
    value = record.get(name)
    if value is True or value is False:
        return value
    if value is None or value == "":
        return False
    if isinstance(value, bool):
        return value
    if str(value).lower() in ("true", "1"):
        return True
    if str(value).lower() in ("false", "0"):
        return False
    raise Rejected(f"{name} is {value!r}, which is not true or false. Correct it in Salesforce.")


def _modstamp(record: dict) -> dt.datetime:
    value = record.get("SystemModstamp")
    try:
        stamp = dt.datetime.fromisoformat(str(value))
    except ValueError:
        raise Rejected(f"SystemModstamp is {value!r}, which is not a timestamp.") from None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=dt.UTC)
    return stamp


def _record_id(record: dict, obj: str) -> str:
    value = record.get("Id")
    if not value:
        raise Rejected(
            f"Missing Id: Salesforce returned this {obj} without an Id, so it cannot be matched "
            "to a Portfolio record. Check the sync user's access to the Id field; this entry "
            "stays open until it is resolved in admin."
        )
    if len(str(value)) > 18:
        raise Rejected(f"Id {value!r} is longer than 18 characters; not a Salesforce Id.")
    return str(value)


def _lookup(record: dict, name: str) -> str:
    return _text(record, name, max_length=18)


SEGMENTS = (
    {label.lower(): value for value, label in Segment.choices}
    | {label: value for value, label in Segment.choices}
    | {value: value for value in Segment.values}
)
HEALTH = {value: value for value in Health.values} | {
    label: value for value, label in Health.choices
}


# --- objects -------------------------------------------------------------------------------


@dataclass
class SyncContext:
    regions: dict[str, str]
    # Per object: may open quarantine rows exist? (skips the resolve UPDATE when not)
    open_quarantine: dict[str, bool] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)  # seconds, for the run details


def _user_fields() -> list[str]:
    return ["Id", "Name", "Email", "SystemModstamp"]


def _parse_user(record: dict, ctx: SyncContext) -> tuple:
    return (
        _record_id(record, "User"),
        _text(record, "Name", max_length=200) or str(record.get("Id")),
        _text(record, "Email", max_length=254).strip(),
        _modstamp(record),
    )


def _account_fields() -> list[str]:
    f = settings.SALESFORCE_FIELDS
    return [
        "Id",
        "Name",
        "ParentId",
        "OwnerId",
        f["account_arr"],
        f["account_region"],
        f["account_segment"],
        f["account_tam"],
        f["account_health"],
        f["account_priority"],
        f["account_renewal_date"],
        f["account_customer_since"],
        f["account_plan"],
        f["account_digital_only"],
        f["account_lam"],
        f["account_licensed_seats"],
        "SystemModstamp",
    ]


def _parse_account(record: dict, ctx: SyncContext) -> tuple:
    f = settings.SALESFORCE_FIELDS
    salesforce_id = _record_id(record, "Account")
    region_raw = record.get(f["account_region"])
    region = (ctx.regions.get(region_raw) if type(region_raw) is str else None) or ctx.regions.get(
        str(region_raw or "").strip().upper()
    )
    if region is None:
        raise Rejected(
            f"{f['account_region']} is {region_raw!r}, which is not a Portfolio region "
            f"(known: {', '.join(sorted(ctx.regions.values()))}). Correct the region in "
            "Salesforce, or add it under Regions in Portfolio admin and run "
            "`manage.py sync_salesforce --full`."
        )
    segment_raw = record.get(f["account_segment"])
    segment = (SEGMENTS.get(segment_raw) if type(segment_raw) is str else None) or SEGMENTS.get(
        str(segment_raw or "").strip().lower()
    )
    if segment is None:
        raise Rejected(
            f"{f['account_segment']} is {segment_raw!r}, which is not a known segment "
            f"({', '.join(Segment.labels)}). Correct the segment in Salesforce."
        )
    health_raw = record.get(f["account_health"])
    health = (HEALTH.get(health_raw) if type(health_raw) is str else None) if health_raw else ""
    if health is None:
        health = HEALTH.get(str(health_raw).strip().lower())
    if health is None:
        raise Rejected(
            f"{f['account_health']} is {health_raw!r}; expected Green, Yellow, Amber or Red. "
            "Correct it in Salesforce."
        )
    priority_raw = record.get(f["account_priority"])
    if isinstance(priority_raw, str) and priority_raw.upper().startswith("P"):
        record = {**record, f["account_priority"]: priority_raw[1:]}
    priority = _integer(record, f["account_priority"], low=1, high=4)
    return (
        salesforce_id,
        _text(record, "Name", max_length=255, required=True),
        _lookup(record, "ParentId"),
        _lookup(record, "OwnerId"),
        _decimal(record, f["account_arr"]) or Decimal(0),
        region,
        segment,
        _lookup(record, f["account_tam"]),
        health,
        priority,
        _date(record, f["account_renewal_date"]),
        _date(record, f["account_customer_since"]),
        _text(record, f["account_plan"], max_length=50),
        _bool(record, f["account_digital_only"]),
        _integer(record, f["account_lam"]),
        _integer(record, f["account_licensed_seats"]),
        _modstamp(record),
    )


def _opportunity_fields() -> list[str]:
    return [
        "Id",
        "AccountId",
        "Name",
        "Type",
        "StageName",
        "CloseDate",
        "Amount",
        "IsClosed",
        "IsWon",
        "SystemModstamp",
    ]


def _parse_opportunity(record: dict, ctx: SyncContext) -> tuple:
    return (
        _record_id(record, "Opportunity"),
        _lookup(record, "AccountId"),
        _text(record, "Name", max_length=255, required=True),
        _text(record, "Type", max_length=80),
        _text(record, "StageName", max_length=80),
        _date(record, "CloseDate"),
        _decimal(record, "Amount"),
        _bool(record, "IsClosed"),
        _bool(record, "IsWon"),
        _modstamp(record),
    )
