"""Bounded lists: every list a person sees is one page of rows with a count that costs
no more than the page.

A list on a screen shows at most `rows` rows and says how many there are; past
`COUNT_CAP` it says "1,000+" instead of counting the whole company (a `COUNT(*)` over a
million accounts costs more than the page it labels). "Show all" is the same list in pages
of `PAGE_ROWS` (`?show=<key>&page=<n>`), each page a LIMIT/OFFSET read.

The counts of all the lists of a screen come from one query (`capped_counts`): each is
`SELECT count(*) FROM (<the list's query> LIMIT cap + 1)`, so a screen with seven lists
spends one query on its seven counts, and each count stops at the cap.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from django.db import connection
from django.db.models import IntegerField, QuerySet, Value

T = TypeVar("T")

# Rows of a list on a screen that shows several lists (agenda sections, board columns).
SECTION_ROWS = 25
# Rows of one page of "show all".
PAGE_ROWS = 100
# Counted exactly up to this many; beyond, shown as "1,000+".
COUNT_CAP = 1000


@dataclass(frozen=True)
class Capped(Generic[T]):
    """One page of a list, with its (capped) count. Iterates over its rows, so templates
    and callers that looped over a plain list keep working; `len()` is the rows shown."""

    key: str
    rows: list[T]
    count: int  # exact when not `count_capped`, else `cap` + 1
    cap: int = COUNT_CAP
    page: int = 1
    per_page: int = SECTION_ROWS
    expanded: bool = False  # shown as "show all" (paged) rather than as a capped section
    has_next: bool = False  # rows beyond this page (read as one row more than the page)

    def __iter__(self) -> Iterator[T]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __bool__(self) -> bool:
        return bool(self.rows)

    @property
    def count_capped(self) -> bool:
        return self.count > self.cap

    @property
    def count_label(self) -> str:
        return f"{self.cap:,}+" if self.count_capped else f"{self.count:,}"

    @property
    def first(self) -> int:
        """1-based position of the first row shown."""
        return (self.page - 1) * self.per_page + 1 if self.rows else 0

    @property
    def last(self) -> int:
        return (self.page - 1) * self.per_page + len(self.rows)

    @property
    def more(self) -> bool:
        """More rows than shown on this page (a "show all" or "next page" link)."""
        return self.has_next

    @property
    def has_previous(self) -> bool:
        return self.page > 1

    @property
    def next_page(self) -> int:
        return self.page + 1

    @property
    def previous_page(self) -> int:
        return self.page - 1


def page_number(value: Any, *, last: int = 10_000) -> int:
    """A page number from a query string: a whole number from 1 to `last`, else 1."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        return 1
    return number if 1 <= number <= last else 1


def capped_counts(
    querysets: Mapping[str, QuerySet],
    *,
    cap: int = COUNT_CAP,
    scalars: Mapping[str, QuerySet] | None = None,
) -> dict[str, Any]:
    """How many rows each queryset has, counted up to `cap` + 1: one query for all.

    A count past `cap` comes back as `cap` + 1 (`Capped.count_capped`). `scalars`: more
    values for the same query, each the first column of the first row of a queryset
    (`.values("held_at")[:1]`), None when it has no row."""
    parts: list[str] = []
    params: list[Any] = []
    for index, qs in enumerate(querysets.values()):
        if qs.query.is_empty():  # `.none()`: no SQL to compile, and no row
            parts.append("0")
            continue
        sql, sub_params = qs.order_by().values("pk")[: cap + 1].query.sql_with_params()
        parts.append(f"(SELECT count(*) FROM ({sql}) AS capped_{index})")  # nosec B608 # SQL compiled by the ORM, values are parameters
        params.extend(sub_params)
    for qs in (scalars or {}).values():
        sql, sub_params = qs.query.sql_with_params()
        parts.append(f"({sql})")
        params.extend(sub_params)
    if not parts:
        return {}
    with connection.cursor() as cursor:
        # The SQL is Django's own compilation of the querysets; values stay parameters.
        cursor.execute("SELECT " + ", ".join(parts), params)
        row = cursor.fetchone()
    return dict(zip([*querysets, *(scalars or {})], row, strict=True))


def capped(
    key: str,
    qs: QuerySet,
    count: int,
    *,
    rows: int = SECTION_ROWS,
    show: str = "",
    page: int = 1,
    cap: int = COUNT_CAP,
) -> Capped:
    """The rows of one list: its first `rows` rows, or, when `show` names it, page `page`
    of `PAGE_ROWS` rows. One query."""
    return capped_union({key: qs}, {key: count}, rows=rows, show=show, page=page, cap=cap)[key]


def capped_union(
    querysets: Mapping[str, QuerySet],
    counts: Mapping[str, int],
    *,
    rows: int = SECTION_ROWS,
    show: str = "",
    page: int = 1,
    cap: int = COUNT_CAP,
) -> dict[str, Capped]:
    """`capped` for several lists of the same model in one query (`UNION ALL` of each
    list's own LIMIT), e.g. the columns of a board. Each list is tagged with its position
    so its rows come back in its own order."""
    parts = []
    limits = {}
    for index, (key, qs) in enumerate(querysets.items()):
        expanded = show == key
        per_page = PAGE_ROWS if expanded else rows
        offset = (page - 1) * per_page if expanded else 0
        limits[key] = (per_page, page if expanded else 1, expanded)
        parts.append(
            qs.annotate(capped_list=Value(index, output_field=IntegerField()))[
                offset : offset + per_page + 1
            ]
        )
    if not parts:
        return {}
    found: dict[int, list] = {index: [] for index in range(len(parts))}
    for row in parts[0].union(*parts[1:], all=True) if len(parts) > 1 else parts[0]:
        found[row.capped_list].append(row)
    result = {}
    for index, key in enumerate(querysets):
        per_page, number, expanded = limits[key]
        result[key] = Capped(
            key=key,
            rows=found[index][:per_page],
            has_next=len(found[index]) > per_page,
            count=counts[key],
            cap=cap,
            page=number,
            per_page=per_page,
            expanded=expanded,
        )
    return result
