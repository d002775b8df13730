"""Django admin change lists that cost the same at a million rows as at a thousand.

Django's change list counts its rows twice (`COUNT(*)` of the filtered list for the
paginator, and of the whole table for "N total"), orders by whatever column was clicked and
searches with `UPPER(col) LIKE '%term%'` over every search field. At 1,000,000 accounts
each of those is a sequential scan. `LargeTableAdmin` gives a change list:

- no full-table count (`show_full_result_count = False`) and a paginator whose count is
  exact up to `COUNT_CAP` rows (`SELECT count(*) FROM (... LIMIT cap + 1)`, read in the
  same query as the table's size estimate) and beyond that the estimate: the table's
  `pg_class.reltuples` when the list is not filtered, the planner's row estimate when it is;
- an ordering an index serves (`-pk` unless the admin names one it has an index for), and
  sorting only by the columns in `sortable_by`, which each admin keeps to indexed ones;
- search (`large_search`) on a name with `icontains` (served by the trigram index on
  `UPPER(name)`, workspace migration 0002; a model whose names live elsewhere, as an
  account's in `portfolio.models.AccountName`, gives its `name_search`) and, when the
  term looks like a Salesforce id, an exact match on the id (its unique index), instead
  of `LIKE '%term%'` on the id.
"""

from __future__ import annotations

import json
import re
from typing import Any

from django.contrib import admin
from django.core.paginator import Paginator
from django.db import connection
from django.db.models import Q, QuerySet
from django.utils.functional import cached_property

# Counted exactly up to this many rows; beyond, estimated.
COUNT_CAP = 10_000
# What may be a Salesforce record id (15 or 18 letters and digits; a little looser, so an
# id typed with a character short still gets the exact match tried, cheaply).
SALESFORCE_ID = re.compile(r"[A-Za-z0-9]{15,18}")


class EstimatedCountPaginator(Paginator):
    """A paginator whose count never scans more than `cap` + 1 rows (see module doc)."""

    cap = COUNT_CAP

    @cached_property
    def count(self) -> int:
        qs = self.object_list
        if not isinstance(qs, QuerySet):
            return len(qs)
        sql, params = qs.order_by().values("pk")[: self.cap + 1].query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT (SELECT count(*) FROM ({sql}) AS capped), "  # nosec B608 # SQL compiled by the ORM, values are parameters
                "(SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass)",
                [*params, qs.model._meta.db_table],
            )
            counted, reltuples = cursor.fetchone()
        if counted <= self.cap:
            return counted
        if not qs.query.where and reltuples and reltuples > self.cap:
            return int(reltuples)
        return max(self.cap + 1, planner_rows(qs))


def planner_rows(qs: QuerySet) -> int:
    """PostgreSQL's estimate of the queryset's rows (EXPLAIN: planning only, no scan)."""
    sql, params = qs.order_by().query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (FORMAT JSON) " + sql, params)  # nosec B608 # SQL compiled by the ORM, values are parameters
        plan = cursor.fetchone()[0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"])


class LargeTableAdmin(admin.ModelAdmin):
    """A ModelAdmin for a table that grows with the book (see module doc).

    `large_search = (name_field, salesforce_id_field)`: the search; either may be None."""

    paginator = EstimatedCountPaginator
    show_full_result_count = False
    ordering: Any = ("-pk",)
    sortable_by: Any = ()
    large_search: tuple[str | None, str | None] | None = None

    def get_search_fields(self, request) -> Any:
        # The search box shows when `large_search` is set (Django shows it for fields).
        if self.large_search is not None:
            return [field for field in self.large_search if field]
        return super().get_search_fields(request)

    def get_search_results(
        self, request, queryset: QuerySet, search_term: str
    ) -> tuple[QuerySet, bool]:
        if self.large_search is None:
            return super().get_search_results(request, queryset, search_term)
        term = search_term.strip()
        if not term:
            return queryset, False
        name_field, id_field = self.large_search
        # Fields of a related row ("account__name"): match the related rows first, then
        # the list's rows by their key (a semi-join the planner starts from the index).
        prefix = _relation(name_field or id_field or "")
        if prefix and all(_relation(f) == prefix for f in (name_field, id_field) if f):
            related = queryset.model._meta.get_field(prefix).related_model
            inner = _match(related.objects.all(), _remote(name_field), _remote(id_field), term)
            return queryset.filter(**{f"{prefix}__in": inner.values("pk")}), False
        return _match(queryset, name_field, id_field, term), False


def _relation(field: str | None) -> str:
    return field.rsplit("__", 1)[0] if field and "__" in field else ""


def _remote(field: str | None) -> str | None:
    return field.rsplit("__", 1)[1] if field else None


def _match(qs: QuerySet, name_field: str | None, id_field: str | None, term: str) -> QuerySet:
    exact_id = bool(id_field and SALESFORCE_ID.fullmatch(term))
    search = getattr(qs.model, "name_search", None)
    if search is not None and name_field == "name" and id_field in (None, "salesforce_id"):
        # A model whose names are searched elsewhere says how (Account: in AccountName).
        return qs.filter(search(term, salesforce_id=exact_id))
    match = Q()
    if name_field:
        match |= Q(**{f"{name_field}__icontains": term})
    if exact_id:
        match |= Q(**{id_field: term})
    return qs.filter(match) if match else qs.none()
