"""The synced objects: field lists, SOQL, staging tables and the set-based SQL that stores
them (COPY + INSERT ... ON CONFLICT ... WHERE IS DISTINCT FROM) and links them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import psycopg
from django.contrib.auth import get_user_model
from django.db import IntegrityError, connection, transaction
from django.db.models import NOT_PROVIDED, Model
from django.utils import timezone

from portfolio.models import Account, AccountName, Opportunity, SalesforceUser
from portfolio.sync.records import (
    SyncContext,
    _account_fields,
    _opportunity_fields,
    _parse_account,
    _parse_opportunity,
    _parse_user,
    _user_fields,
)


@dataclass
class ObjectSpec:
    name: str
    model: type[Model]
    fields: Callable[[], list[str]]
    columns: list[tuple[str, str]]  # staging table: (column, SQL type)
    parse: Callable[[dict, SyncContext], tuple]
    # (INSERT ... SELECT from the staging table, its ON CONFLICT clause, parameters)
    upsert_sql: Callable[[], tuple[str, str, list[Any]]]
    # Tables the model's rows fill by trigger (empty when it is): a bulk load sets their
    # indexes and foreign keys aside with the model's own.
    companions: tuple[str, ...] = ()


def _defaults(model: type[Model], given: Iterable[str]) -> tuple[list[str], list[Any]]:
    """Columns the sync does not set, with their Django defaults (INSERT needs NOT NULLs)."""
    given = set(given)
    columns: list[str] = []
    values: list[Any] = []
    now = timezone.now()
    for f in model._meta.concrete_fields:
        if f.primary_key or f.column is None or f.column in given:
            continue
        if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
            columns.append(f.column)
            values.append(now)
        elif f.default is not NOT_PROVIDED:
            columns.append(f.column)
            values.append(f.get_db_prep_save(f.get_default(), connection))
    return columns, values


def _insert_sql(
    *, table: str, stage: str, select: dict[str, str], model: type[Model], joins: str = ""
) -> tuple[str, list[Any]]:
    extra_cols, extra_values = _defaults(model, select)
    cols = [*select, *extra_cols]
    exprs = [*select.values(), *(["%s"] * len(extra_cols))]
    sql = (
        f"INSERT INTO {table} AS t ({', '.join(cols)}) "
        f"SELECT {', '.join(exprs)} FROM {stage} s {joins} "  # nosec B608 # identifiers come from code, values go as query parameters
    )
    return sql, extra_values


def _account_id_of(salesforce_id: str) -> str:
    """A link to an account by Salesforce Id, as one probe of its unique index per staged
    row that has one. A join would let the planner hash the whole account table for every
    batch: a cost that grows with the table (100,000 accounts), not with the batch."""
    return (
        f"CASE WHEN {salesforce_id} <> '' THEN (SELECT x.id FROM portfolio_account x "
        f"WHERE x.salesforce_id = {salesforce_id}) END"  # nosec B608 # identifiers come from code, values go as query parameters
    )


def _account_upsert() -> tuple[str, str, list[Any]]:
    sql, params = _insert_sql(
        table="portfolio_account",
        stage="sf_stage_account",
        model=Account,
        # Users are few (hashed once per batch); accounts are many (probed one by one).
        joins=(
            "LEFT JOIN portfolio_salesforceuser ou ON ou.salesforce_id = s.owner_salesforce_id "
            "LEFT JOIN portfolio_salesforceuser tu ON tu.salesforce_id = s.salesforce_tam_id"
        ),
        select={
            "salesforce_id": "s.salesforce_id",
            "name": "s.name",
            "parent_salesforce_id": "s.parent_salesforce_id",
            "parent_id": _account_id_of("s.parent_salesforce_id"),
            "owner_salesforce_id": "s.owner_salesforce_id",
            "owner_id": "ou.id",
            "arr": "s.arr",
            "region_id": "s.region_id",
            "segment": "s.segment",
            "salesforce_tam_id": "s.salesforce_tam_id",
            "tam_id": "tu.user_id",
            "salesforce_health": "s.salesforce_health",
            "health": "s.salesforce_health",
            "salesforce_priority": "s.salesforce_priority",
            "priority": "s.salesforce_priority",
            "renewal_date": "s.renewal_date",
            "customer_since": "s.customer_since",
            "plan": "s.plan",
            "digital_only": "s.digital_only",
            "lam": "s.lam",
            "licensed_seats": "s.licensed_seats",
            "salesforce_modstamp": "s.salesforce_modstamp",
            "synced_at": "now()",
        },
    )
    plain = [
        "name",
        "parent_salesforce_id",
        "parent_id",
        "owner_salesforce_id",
        "owner_id",
        "arr",
        "region_id",
        "segment",
        "renewal_date",
        "customer_since",
        "plan",
        "digital_only",
        "lam",
        "licensed_seats",
        "salesforce_tam_id",
        "salesforce_health",
        "salesforce_priority",
    ]
    sets = [f"{c} = EXCLUDED.{c}" for c in plain] + [
        # Take Salesforce's TAM/health/priority only where Portfolio had no pending change.
        "tam_id = CASE WHEN t.tam_id IS NOT DISTINCT FROM (SELECT u.user_id FROM "
        "portfolio_salesforceuser u WHERE u.salesforce_id = t.salesforce_tam_id) "
        "THEN EXCLUDED.tam_id ELSE t.tam_id END",
        "health = CASE WHEN t.health = t.salesforce_health THEN EXCLUDED.health ELSE t.health END",
        "priority = CASE WHEN t.priority IS NOT DISTINCT FROM t.salesforce_priority "
        "THEN EXCLUDED.priority ELSE t.priority END",
        "salesforce_modstamp = EXCLUDED.salesforce_modstamp",
        "synced_at = EXCLUDED.synced_at",
        "updated_at = EXCLUDED.updated_at",
    ]
    return sql, _on_conflict(sets, plain), params


def _on_conflict(sets: list[str], compared: list[str]) -> str:
    return (
        f"ON CONFLICT (salesforce_id) DO UPDATE SET {', '.join(sets)} "
        f"WHERE ({', '.join('t.' + c for c in compared)}) IS DISTINCT FROM "
        f"({', '.join('EXCLUDED.' + c for c in compared)}) "
        # An older version of a record (e.g. a late page) never overwrites a newer one.
        "AND (t.salesforce_modstamp IS NULL "
        "OR EXCLUDED.salesforce_modstamp >= t.salesforce_modstamp) "
        "RETURNING (xmax = 0)"  # nosec B608 # identifiers come from code, values go as query parameters
    )


def _opportunity_upsert() -> tuple[str, str, list[Any]]:
    sql, params = _insert_sql(
        table="portfolio_opportunity",
        stage="sf_stage_opportunity",
        model=Opportunity,
        select={
            "salesforce_id": "s.salesforce_id",
            "account_salesforce_id": "s.account_salesforce_id",
            "account_id": _account_id_of("s.account_salesforce_id"),
            "name": "s.name",
            "type": "s.type",
            "stage_name": "s.stage_name",
            "close_date": "s.close_date",
            "amount": "s.amount",
            "is_closed": "s.is_closed",
            "is_won": "s.is_won",
            "salesforce_modstamp": "s.salesforce_modstamp",
            "synced_at": "now()",
        },
    )
    plain = [
        "account_salesforce_id",
        "account_id",
        "name",
        "type",
        "stage_name",
        "close_date",
        "amount",
        "is_closed",
        "is_won",
    ]
    sets = [f"{c} = EXCLUDED.{c}" for c in plain] + [
        "salesforce_modstamp = EXCLUDED.salesforce_modstamp",
        "synced_at = EXCLUDED.synced_at",
    ]
    return sql, _on_conflict(sets, plain), params


def _user_upsert() -> tuple[str, str, list[Any]]:
    sql, params = _insert_sql(
        table="portfolio_salesforceuser",
        stage="sf_stage_user",
        model=SalesforceUser,
        select={
            "salesforce_id": "s.salesforce_id",
            "name": "s.name",
            "email": "s.email",
            "salesforce_modstamp": "s.salesforce_modstamp",
        },
    )
    plain = ["name", "email"]
    sets = [f"{c} = EXCLUDED.{c}" for c in plain] + [
        "salesforce_modstamp = EXCLUDED.salesforce_modstamp"
    ]
    return sql, _on_conflict(sets, plain), params


OBJECTS: list[ObjectSpec] = [
    ObjectSpec(
        name="User",
        model=SalesforceUser,
        fields=_user_fields,
        columns=[
            ("salesforce_id", "varchar(18)"),
            ("name", "varchar(200)"),
            ("email", "varchar(254)"),
            ("salesforce_modstamp", "timestamptz"),
        ],
        parse=_parse_user,
        upsert_sql=_user_upsert,
    ),
    ObjectSpec(
        name="Account",
        model=Account,
        fields=_account_fields,
        columns=[
            ("salesforce_id", "varchar(18)"),
            ("name", "varchar(255)"),
            ("parent_salesforce_id", "varchar(18)"),
            ("owner_salesforce_id", "varchar(18)"),
            ("arr", "numeric(14, 2)"),
            ("region_id", "varchar(20)"),
            ("segment", "varchar(20)"),
            ("salesforce_tam_id", "varchar(18)"),
            ("salesforce_health", "varchar(10)"),
            ("salesforce_priority", "smallint"),
            ("renewal_date", "date"),
            ("customer_since", "date"),
            ("plan", "varchar(50)"),
            ("digital_only", "boolean"),
            ("lam", "integer"),
            ("licensed_seats", "integer"),
            ("salesforce_modstamp", "timestamptz"),
        ],
        parse=_parse_account,
        upsert_sql=_account_upsert,
        companions=(AccountName._meta.db_table,),
    ),
    ObjectSpec(
        name="Opportunity",
        model=Opportunity,
        fields=_opportunity_fields,
        columns=[
            ("salesforce_id", "varchar(18)"),
            ("account_salesforce_id", "varchar(18)"),
            ("name", "varchar(255)"),
            ("type", "varchar(80)"),
            ("stage_name", "varchar(80)"),
            ("close_date", "date"),
            ("amount", "numeric(14, 2)"),
            ("is_closed", "boolean"),
            ("is_won", "boolean"),
            ("salesforce_modstamp", "timestamptz"),
        ],
        parse=_parse_opportunity,
        upsert_sql=_opportunity_upsert,
    ),
]


def soql_for(spec: ObjectSpec, since: dt.datetime | None) -> str:
    where = ""
    if since is not None:
        stamp = since.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        where = f" WHERE SystemModstamp >= {stamp}"
    return f"SELECT {', '.join(spec.fields())} FROM {spec.name}{where} ORDER BY SystemModstamp, Id"  # nosec B608 # identifiers come from code, values go as query parameters


def _create_stage(spec: ObjectSpec) -> None:
    """The session's staging table for this object (temporary: dies with the connection)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TEMPORARY TABLE IF NOT EXISTS sf_stage_{spec.name.lower()} "
            f"({', '.join(f'{n} {t}' for n, t in spec.columns)})"
        )


def _upsert(spec: ObjectSpec, rows: list[tuple], *, expect_new: bool = False) -> tuple[int, int]:
    """Store the rows; returns (created, updated). `expect_new` (a bulk load into a table
    that was empty) first tries a plain INSERT, which skips the per-row conflict check of
    ON CONFLICT; a record already stored by this load makes it fall back to the upsert."""
    stage = f"sf_stage_{spec.name.lower()}"
    columns = ", ".join(name for name, _ in spec.columns)
    insert, on_conflict, params = spec.upsert_sql()
    # Binary COPY: psycopg writes the typed values as they are, about twice as fast as
    # formatting them as text (bench/sync_salesforce.py).
    types = [sql_type.split("(")[0] for _, sql_type in spec.columns]
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {stage}")
        with cursor.cursor.copy(f"COPY {stage} ({columns}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(types)
            for row in rows:
                copy.write_row(row)
        if expect_new:
            try:
                with transaction.atomic():
                    cursor.execute(insert, params)
                return cursor.rowcount, 0
            except IntegrityError as exc:
                if not isinstance(exc.__cause__, psycopg.errors.UniqueViolation):
                    raise
        cursor.execute(insert + on_conflict, params)
        inserted = [flag for (flag,) in cursor.fetchall()]
    created = sum(1 for flag in inserted if flag)
    return created, len(inserted) - created


def _resolve_links() -> dict[str, int]:
    """Set-based after each run: match users by email, then owners, TAMs, parents and the
    opportunities' accounts. Each statement writes only rows whose link changes."""
    user_table = get_user_model()._meta.db_table
    counts: dict[str, int] = {}
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH candidates AS (
                SELECT lower(email) AS email, min(id) AS user_id, count(*) AS n
                FROM {user_table} WHERE is_active AND email <> '' GROUP BY lower(email)
            )
            UPDATE portfolio_salesforceuser su SET user_id = c.user_id FROM candidates c
            WHERE su.user_id IS NULL AND su.email <> '' AND lower(su.email) = c.email
              AND c.n = 1
            RETURNING su.salesforce_id
            """  # nosec B608 # identifiers come from code, values go as query parameters
        )
        matched = [sid for (sid,) in cursor.fetchall()]
        counts["users_matched"] = len(matched)
        # A TAM whose Salesforce user was just matched: the account had no TAM because the
        # user was unknown, not because Portfolio removed one.
        cursor.execute(
            """
            UPDATE portfolio_account a SET tam_id = su.user_id
            FROM portfolio_salesforceuser su
            WHERE a.salesforce_tam_id = ANY(%s) AND su.salesforce_id = a.salesforce_tam_id
              AND a.tam_id IS NULL
            """,
            [matched],
        )
        counts["tams_linked"] = cursor.rowcount
        # The upserts link what they can; these catch links whose target arrived later
        # (a parent after its child, a user or account in a later run).
        cursor.execute(
            """
            UPDATE portfolio_account a SET owner_id = su.id FROM portfolio_salesforceuser su
            WHERE a.owner_id IS NULL AND a.owner_salesforce_id <> ''
              AND su.salesforce_id = a.owner_salesforce_id
            """
        )
        counts["owners_linked"] = cursor.rowcount
        cursor.execute(
            """
            UPDATE portfolio_account a SET parent_id = p.id FROM portfolio_account p
            WHERE a.parent_id IS NULL AND a.parent_salesforce_id <> ''
              AND p.salesforce_id = a.parent_salesforce_id
            """
        )
        counts["parents_linked"] = cursor.rowcount
        cursor.execute(
            """
            UPDATE portfolio_opportunity o SET account_id = a.id FROM portfolio_account a
            WHERE o.account_id IS NULL AND o.account_salesforce_id <> ''
              AND a.salesforce_id = o.account_salesforce_id
            """
        )
        counts["opportunities_linked"] = cursor.rowcount
    return counts
